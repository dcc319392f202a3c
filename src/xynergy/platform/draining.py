"""Whether this process is stopping: set when the server is told to exit (SIGTERM, SIGINT).

uvicorn answers a SIGTERM by closing its listener and waiting, without a bound,
for every connection still being served; the app's lifespan ends only after
that. A long-lived response (a workflow's SSE progress stream) would hold the
replica up until its run ends, past any process manager's stop timeout, and
then be cut by SIGKILL without a word. Streams look at ``started()`` instead and
end themselves with a final event telling the client to reconnect (to another
replica, through the proxy).

Set once, never cleared: a process that begins to stop does not start again.
"""

from __future__ import annotations

import threading

__all__ = ["begin", "started"]

_stopping = threading.Event()


def begin() -> None:
    """Mark this process as stopping (called from the server's exit handler)."""
    _stopping.set()


def started() -> bool:
    """Whether this process has begun to stop."""
    return _stopping.is_set()
