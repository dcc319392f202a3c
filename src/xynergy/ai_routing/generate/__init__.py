"""``POST /api/generate/intelligent``: the platform's own AI request."""
