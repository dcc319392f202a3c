"""Per-minute rollups counted in process and written behind, by every replica.

A request pays a dict lookup and a few integer additions: each event is added
to its series' counters for the current UTC minute (bounded: at most
``rollup_max_series_per_minute`` series a minute, the rest dropped and counted).
Every ``rollup_flush_seconds`` the minutes that have ended become rows, queued
on a :class:`~xynergy.platform.write_behind.WriteBehind` (bounded; overflow
dropped and counted on ``/metrics``) and inserted in batches; at shutdown the
current minute goes too. Each row carries this replica's id, so replicas never
write the same row and the series queries sum across them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter
from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xynergy.platform.config import Settings
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.logging import get_logger
from xynergy.platform.monitoring import PlatformMetrics
from xynergy.platform.rollups.buckets import BUCKET_COLUMNS, BUCKET_COUNT, bucket_index
from xynergy.platform.rollups.models import (
    AI_ROLLUPS,
    CACHE_ROLLUPS,
    MODEL_MAX_CHARS,
    NAME_MAX_CHARS,
    RATE_LIMIT_ROLLUPS,
    REPLICA_MAX_CHARS,
    REQUEST_ROLLUPS,
    ROLLUP_TABLES,
    ROUTE_MAX_CHARS,
)
from xynergy.platform.write_behind import WriteBehind

__all__ = ["ROWS_DROPPED_METRIC", "SAMPLES_DROPPED_METRIC", "RollupRecorder", "default_replica_id"]

log = get_logger(__name__)

ROWS_DROPPED_METRIC = "xynergy_rollup_rows_dropped"
SAMPLES_DROPPED_METRIC = "xynergy_rollup_samples_dropped"

# Minutes held in process at once: the current one and a few that ended but were
# not flushed yet (a flush runs every minute-ish). A new minute past this bound
# is dropped rather than letting the table of minutes grow.
_MINUTES_HELD = 4
_SECONDS_PER_MINUTE = 60

# Series keys start with their kind; counters are lists indexed as below.
_REQUEST, _CACHE, _AI, _REJECTED = "request", "cache", "ai", "rejected"
_REQUEST_FIELDS = ("requests", "errors_4xx", "errors_5xx", "rate_limited", "latency_sum_us")
_REQUEST_BUCKETS_AT = len(_REQUEST_FIELDS)
_CACHE_FIELDS = ("hits", "misses", "evictions")
_AI_FIELDS = ("requests", "errors", "cache_hits", "input_tokens", "output_tokens", "cost_nanos")

Row = tuple[Table, dict[str, Any]]
SeriesKey = tuple[str, ...]


def default_replica_id() -> str:
    """Host, process and a random suffix: unique even for two apps in one process."""
    host = socket.gethostname()[:40]
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"[:REPLICA_MAX_CHARS]


class RollupRecorder:
    """Counts events per minute and series; writes them as rows behind the requests."""

    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        metrics: PlatformMetrics,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.replica_id = (settings.replica_id or default_replica_id())[:REPLICA_MAX_CHARS]
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._max_series = settings.rollup_max_series_per_minute
        self._flush_seconds = settings.rollup_flush_seconds
        # minute -> series -> counters; bounded by _MINUTES_HELD x max series.
        self._minutes: dict[int, dict[SeriesKey, list[int]]] = {}
        self._samples_dropped = metrics.service_metric(
            Counter,
            SAMPLES_DROPPED_METRIC,
            "Events not counted in a rollup, by reason (series_limit: the minute's "
            "series were all taken).",
            ["reason"],
        )
        self._writer: WriteBehind[Row] = WriteBehind(
            name="platform.rollups",
            write=self._insert,
            dropped=metrics.service_metric(
                Counter,
                ROWS_DROPPED_METRIC,
                "Rollup rows not written, by reason (queue_full, refused, unwritten_at_stop).",
                ["reason"],
            ),
            queue_max=settings.rollup_queue_max_rows,
            batch_max=settings.rollup_batch_max_rows,
            flush_seconds=settings.rollup_flush_seconds,
        )
        self._task: asyncio.Task[None] | None = None

    # --- counting (on the request path: no I/O, no awaits) ----------------------

    def request(self, service: str, method: str, route: str, status: int, seconds: float) -> None:
        counts = self._counters(
            (_REQUEST, service, method, route), len(_REQUEST_FIELDS) + BUCKET_COUNT
        )
        if counts is None:
            return
        counts[0] += 1
        if status >= 500:
            counts[2] += 1
        elif status >= 400:
            counts[1] += 1
            if status == 429:
                counts[3] += 1
        counts[4] += int(seconds * 1_000_000)
        counts[_REQUEST_BUCKETS_AT + bucket_index(seconds)] += 1

    def cache(self, namespace: str, *, hit: bool) -> None:
        counts = self._counters((_CACHE, namespace), len(_CACHE_FIELDS))
        if counts is not None:
            counts[0 if hit else 1] += 1

    def cache_evictions(self, namespace: str, count: int = 1) -> None:
        counts = self._counters((_CACHE, namespace), len(_CACHE_FIELDS))
        if counts is not None:
            counts[2] += count

    def rate_limited(
        self, service: str, route: str, rate_class: str, tenant_id: str | None
    ) -> None:
        # "" for no tenant: a key part must be a str; the row stores null.
        counts = self._counters((_REJECTED, service, route, rate_class, tenant_id or ""), 1)
        if counts is not None:
            counts[0] += 1

    def ai(
        self,
        tenant_id: str,
        model: str,
        *,
        input_tokens: int,
        output_tokens: int,
        cost_nanos: int,
        cache_hit: bool,
        error: bool,
    ) -> None:
        counts = self._counters((_AI, tenant_id, model), len(_AI_FIELDS))
        if counts is None:
            return
        counts[0] += 1
        counts[1] += error
        counts[2] += cache_hit
        counts[3] += input_tokens
        counts[4] += output_tokens
        counts[5] += cost_nanos

    def _counters(self, key: SeriesKey, width: int) -> list[int] | None:
        minute = int(self._clock() // _SECONDS_PER_MINUTE)
        series = self._minutes.get(minute)
        if series is None:
            if len(self._minutes) >= _MINUTES_HELD:
                self._samples_dropped.labels(reason="minutes_held").inc()
                return None
            series = self._minutes[minute] = {}
        counts = series.get(key)
        if counts is None:
            if len(series) >= self._max_series:
                self._samples_dropped.labels(reason="series_limit").inc()
                return None
            counts = series[key] = [0] * width
        return counts

    # --- writing (a background task) -------------------------------------------

    @property
    def pending_rows(self) -> int:
        """Rows queued for writing and not yet written."""
        return self._writer.pending

    def start(self) -> None:
        """Start the periodic flush."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="platform-rollups")

    async def stop(self) -> None:
        """Stop the periodic flush, then write everything counted, this minute's too."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.queue_rows(include_current=True)
        await self._writer.stop()

    async def flush(self, *, include_current: bool = True) -> int:
        """Queue the counted minutes as rows (the current one too, unless told not)
        and write the queue; the number of rows written."""
        self.queue_rows(include_current=include_current)
        return await self._writer.flush()

    def queue_rows(self, *, include_current: bool) -> int:
        """Turn ended minutes (and the current one if asked) into queued rows."""
        current = int(self._clock() // _SECONDS_PER_MINUTE)
        queued = 0
        for minute in sorted(self._minutes):
            if minute >= current and not include_current:
                continue
            for key, counts in self._minutes.pop(minute).items():
                queued += self._writer.record(self._row(minute, key, counts))
        return queued

    def _row(self, minute: int, key: SeriesKey, counts: list[int]) -> Row:
        base: dict[str, Any] = {"minute": minute, "replica_id": self.replica_id}
        kind = key[0]
        if kind == _REQUEST:
            _kind, service, method, route = key
            base.update(
                service=service[:NAME_MAX_CHARS],
                method=method[:NAME_MAX_CHARS],
                route=route[:ROUTE_MAX_CHARS],
            )
            # The fields, then the buckets after them.
            base.update(zip(_REQUEST_FIELDS, counts, strict=False))
            base.update(zip(BUCKET_COLUMNS, counts[_REQUEST_BUCKETS_AT:], strict=True))
            return REQUEST_ROLLUPS, base
        if kind == _REJECTED:
            _kind, service, route, rate_class, tenant_id = key
            base.update(
                service=service[:NAME_MAX_CHARS],
                route=route[:ROUTE_MAX_CHARS],
                rate_class=rate_class[:NAME_MAX_CHARS],
                tenant_id=tenant_id or None,
                rejections=counts[0],
            )
            return RATE_LIMIT_ROLLUPS, base
        if kind == _CACHE:
            base["namespace"] = key[1][:NAME_MAX_CHARS]
            base.update(zip(_CACHE_FIELDS, counts, strict=True))
            return CACHE_ROLLUPS, base
        base.update(tenant_id=key[1], model=key[2][:MODEL_MAX_CHARS])
        base.update(zip(_AI_FIELDS, counts, strict=True))
        return AI_ROLLUPS, base

    async def _insert(self, rows: list[Row]) -> None:
        by_table: dict[Table, list[dict[str, Any]]] = {}
        for table, row in rows:
            by_table.setdefault(table, []).append(row)
        async with unit_of_work(self._sessionmaker) as session:
            connection = await session.connection()
            for table in ROLLUP_TABLES:
                values = by_table.get(table)
                if values:
                    # One executemany INSERT per table and batch.
                    await connection.execute(insert(table), values)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            try:
                await self.flush(include_current=False)
            except Exception as exc:  # never let the flusher die
                log.exception("platform.rollups.flush_crashed", error=repr(exc))
