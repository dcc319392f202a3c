"""Messages: a user turn, the model call through the AI Routing Engine, the stored reply."""
