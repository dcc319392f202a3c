"""Providers behind one interface: OpenAI-compatible HTTP, Anthropic, offline."""
