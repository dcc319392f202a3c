"""Runs: starting, reading, cancelling, resuming and signalling workflow runs."""
