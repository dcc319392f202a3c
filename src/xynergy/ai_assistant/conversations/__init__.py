"""Conversations: create, list, read, rename, delete, export."""
