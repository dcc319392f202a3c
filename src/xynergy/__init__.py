"""Xynergy: a multi-tenant AI marketing platform on one shared platform layer."""

__version__ = "0.1.0"
