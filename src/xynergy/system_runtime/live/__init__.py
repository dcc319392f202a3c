"""Live progress of runs (WebSocket and SSE), single-use WebSocket tickets, and the
runtime's metrics on ``/metrics``."""
