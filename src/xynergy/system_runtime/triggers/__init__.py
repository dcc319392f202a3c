"""Service triggers: one catalogue operation, called with the caller's own scopes."""
