"""Choosing a model, sharing calls, caching answers."""
