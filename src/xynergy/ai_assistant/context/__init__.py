"""The context of a model call: built to a token budget, with a rolling summary."""
