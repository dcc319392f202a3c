"""Tenants and their API keys: the records behind authentication."""
