"""Replies in flight: each one a named task this process owns and bounds.

A reply is generated in its own task, not in the request that asked for it, so
a client that disconnects mid-stream still gets the finished reply stored. The
runner bounds how many run at once (a slot is claimed before anything is
written, so a refusal writes nothing), and on shutdown waits a grace period for
them to be stored, then cancels the rest: no task outlives the app.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, Generic, TypeVar

from xynergy.ai_assistant.messages.group_write import GroupWriter
from xynergy.platform.exceptions import UpstreamUnavailable
from xynergy.platform.logging import get_logger

__all__ = ["DeltaSink", "Slot", "TurnRunner"]

log = get_logger(__name__)

T = TypeVar("T")


class Slot:
    """A claimed place for one reply; released when its task ends (or if never started)."""

    def __init__(self, runner: TurnRunner) -> None:
        self._runner = runner
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._runner._claimed -= 1


class TurnRunner:
    """Starts, bounds and finally stops the tasks that generate replies."""

    def __init__(self, *, max_in_flight: int, shutdown_grace_seconds: float) -> None:
        self._max = max_in_flight
        self._grace = shutdown_grace_seconds
        self._claimed = 0
        # Bounded by claim(): a task starts only with a slot, and slots are counted.
        self._tasks: set[asyncio.Task[Any]] = set()  # guard: allow XG005 bounded by claim()
        self._closed = False
        # The replies' rows, committed in groups (never more than the replies in flight).
        self.replies = GroupWriter(max_group=max_in_flight)

    @property
    def in_flight(self) -> int:
        """Replies being generated now (for tests and metrics)."""
        return len(self._tasks)

    def claim(self) -> Slot:
        """A slot for one more reply; 503 when the process is at its bound or stopping."""
        if self._closed or self._claimed >= self._max:
            raise UpstreamUnavailable(
                "The assistant is answering as many messages as it may; retry."
            )
        self._claimed += 1
        return Slot(self)

    def start(self, slot: Slot, work: Coroutine[Any, Any, T], *, name: str) -> asyncio.Task[T]:
        """Run ``work`` in a task named ``name`` that holds ``slot`` until it ends."""
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)

        def finished(done: asyncio.Task[Any]) -> None:
            self._tasks.discard(done)
            slot.release()
            if not done.cancelled() and done.exception() is not None:
                log.error(
                    "assistant.turn_failed", task=done.get_name(), error=repr(done.exception())
                )

        task.add_done_callback(finished)
        return task

    async def stop(self) -> None:
        """Wait up to the grace period for replies to be stored, then cancel the rest."""
        self._closed = True
        if not self._tasks:
            return
        pending = set(self._tasks)
        _, late = await asyncio.wait(pending, timeout=self._grace)
        for task in late:
            task.cancel()
        if late:
            log.warning("assistant.turns_cancelled_at_shutdown", count=len(late))
            await asyncio.wait(late)


class DeltaSink(Generic[T]):
    """A reply's pieces on their way to one stream: bounded, and detachable.

    The generating task waits when the stream is slower (back-pressure); once the
    stream is gone, pieces are dropped and the task goes on to store the reply.
    """

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[T] = asyncio.Queue(size)
        self._detached = False

    async def push(self, item: T) -> None:
        if not self._detached:
            await self.queue.put(item)

    def detach(self) -> None:
        """The stream is gone: unblock the producer and drop what is buffered."""
        self._detached = True
        with contextlib.suppress(asyncio.QueueEmpty):
            while True:
                self.queue.get_nowait()
