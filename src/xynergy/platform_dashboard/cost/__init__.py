"""The dashboard's cost view: AI spend read from the AI Routing Engine."""
