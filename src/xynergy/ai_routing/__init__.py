"""AI Routing Engine: the one gateway between the platform and AI providers."""
