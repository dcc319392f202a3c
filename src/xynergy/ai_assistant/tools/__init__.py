"""The assistant's tools: the platform's operations, scoped by the user's key."""
