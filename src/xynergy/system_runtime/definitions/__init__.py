"""Workflow definitions: named, versioned DAGs of catalogue operations."""
