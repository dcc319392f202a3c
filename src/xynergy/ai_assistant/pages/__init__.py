"""The AI Assistant's chat page (``GET /`` of the app)."""
