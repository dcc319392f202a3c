"""The Platform Dashboard's web pages (``GET /`` of the app) and what they ask about the viewer."""
