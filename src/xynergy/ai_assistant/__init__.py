"""AI Assistant: conversations with bounded, persisted context, answered through the AI Routing Engine."""
