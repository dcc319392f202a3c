"""System Runtime memory over many completed runs: does the process grow?

One all-in-one app in process (System Runtime plus a tiny test service, httpx
``ASGITransport``, lifespan, fresh migrated database) starts runs of a tenant
definition of ``--steps`` no-op operation steps through
``POST /system-runtime/api/workflows/start``, keeping at most ``--window`` in
flight, and waits for each to end (one bounded status query of the in-flight
runs every 50 ms). Every run must succeed.

After ``--warmup`` runs the first sample is taken, then one every ``--every``
runs until ``--runs`` more have completed. Before each sample the window drains
(no run in flight) and a full ``gc.collect()`` runs. A sample holds the process's
RSS (``/proc/self/statm``); what glibc's heap holds in use and free (``mallinfo2``:
live C and large Python allocations, and freed memory the heap keeps); what SQLite
holds itself (its page caches, part of the heap in use); the Python
objects the collector tracks and the blocks pymalloc holds (both counts, nothing
hooked); and the number of asyncio tasks. Growth is against the first sample; the
goal (< 32 MB RSS over 10,000 runs) is printed for information, never asserted.

Nothing traces allocations by default: tracemalloc (``--tracemalloc``) mallocs and
frees a trace entry beside every Python allocation, which fragments glibc's heap
and itself grows the RSS it is meant to explain (measured: +14 MB over 3,000
PostgreSQL runs with it, +4 MB without). With it, the lines holding most more
memory at the end than at the first sample go to stderr. ``--trim`` calls
``malloc_trim(0)`` after reading each sample and reads the RSS again: what it gives
back was free heap (fragmentation), not live memory. It changes what later samples
read, so the headline figures come from a run without it.

    .venv/bin/python bench/runtime_memory.py [--runs 10000] [--every 1000] [--warmup 1000]
        [--steps 1] [--window 16] [--tenant-concurrency 4] [--postgres URL [--no-sqlite]]
        [--trim] [--tracemalloc] [--json]

``--postgres`` runs the same on a throwaway PostgreSQL database (created next to
the admin URL given, dropped afterwards) after the SQLite run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import tempfile
import time
import tracemalloc
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from process_memory import heap_mb, rss_bytes, sqlite_mb, trimmed_rss_mb
from runtime_support import (
    ARRIVALS,
    DEFINITION,
    ENDED,
    Caller,
    Databases,
    bench_settings,
    build_app,
    chain_spec,
    create_caller,
    progress,
    quiet_logs,
    runtime_settings,
    serving,
)
from sqlalchemy import select

from xynergy.platform.db.session import unit_of_work
from xynergy.platform.runtime import Platform
from xynergy.system_runtime.models import RunRecord

GOAL_MB = 32.0
START = "/system-runtime/api/workflows/start"
STATUS_POLL_SECONDS = 0.05
# No run ended for this long: the in-flight ones are stuck (reported, then the run stops).
STALL_SECONDS = 120.0
MB = 1024 * 1024
TOP_GROWTH_LINES = 12


@dataclass(frozen=True, slots=True)
class Sample:
    database: str
    runs: int
    seconds: float
    rss_mb: float
    heap_in_use_mb: float | None  # glibc mallinfo2: live allocations (mmapped ones too)
    heap_free_mb: float | None  # glibc mallinfo2: freed memory the heap still holds
    rss_trimmed_mb: float | None  # after malloc_trim(0), with --trim
    sqlite_mb: float | None  # SQLite's own allocations (page caches), part of heap_in_use
    gc_objects: int
    pymalloc_blocks: int
    tasks: int
    traced_mb: float | None  # with --tracemalloc
    rss_growth_mb: float
    heap_in_use_growth_mb: float | None


class Driver:
    """Keeps up to ``window`` runs in flight and counts the ones that ended."""

    def __init__(
        self, client: httpx.AsyncClient, platform: Platform, caller: Caller, window: int
    ) -> None:
        self._client = client
        self._platform = platform
        self._caller = caller
        self._window = window
        self._in_flight: set[str] = set()
        self.completed = 0

    async def _start(self, number: int) -> None:
        response = await self._client.post(
            START,
            json={"definition": DEFINITION, "input": {"tag": f"m{number}"}},
            headers=self._caller.headers,
        )
        if response.status_code != 202:
            raise SystemExit(f"start answered {response.status_code}: {response.text}")
        self._in_flight.add(str(response.json()["id"]))

    async def _collect_ended(self) -> None:
        async with unit_of_work(self._platform.sessionmaker) as session:
            rows = (
                await session.execute(
                    select(RunRecord.id, RunRecord.status)
                    .where(RunRecord.id.in_(self._in_flight), RunRecord.status.in_(ENDED))
                    .limit(len(self._in_flight))
                )
            ).all()
        for run_id, status in rows:
            if status != "succeeded":
                raise SystemExit(f"run {run_id} ended {status}")
            self._in_flight.discard(run_id)
            self.completed += 1

    async def complete(self, count: int) -> None:
        """Start ``count`` more runs and return when every one has ended."""
        target = self.completed + count
        started = self.completed + len(self._in_flight)
        progress_at = time.monotonic()
        while self.completed < target:
            while len(self._in_flight) < self._window and started < target:
                await self._start(started)
                started += 1
            await asyncio.sleep(STATUS_POLL_SECONDS)
            before = self.completed
            await self._collect_ended()
            if self.completed > before:
                progress_at = time.monotonic()
            elif time.monotonic() - progress_at > STALL_SECONDS:
                await self._report_stuck()

    async def _report_stuck(self) -> None:
        async with unit_of_work(self._platform.sessionmaker) as session:
            rows = (
                await session.execute(
                    select(RunRecord.id, RunRecord.status)
                    .where(RunRecord.id.in_(self._in_flight))
                    .limit(len(self._in_flight))
                )
            ).all()
        stuck = ", ".join(f"{run_id} {status}" for run_id, status in rows)
        raise SystemExit(
            f"after {self.completed} runs, none ended for {STALL_SECONDS:.0f} s; in flight: {stuck}"
        )


async def measure(databases: Databases, kind: str, args: argparse.Namespace) -> list[Sample]:
    url, data_dir = await databases.fresh(kind)
    runtime = runtime_settings(tenant_concurrency=args.tenant_concurrency, poll_seconds=args.poll)
    app = build_app(bench_settings(url, data_dir), runtime)
    ARRIVALS.keep_per_run = False
    ARRIVALS.reset()
    samples: list[Sample] = []
    async with serving(app) as client:
        platform: Platform = app.state.platform
        caller = await create_caller(platform, chain_spec(args.steps))
        driver = Driver(client, platform, caller, args.window)
        progress(f"{kind}: warm-up, {args.warmup} runs")
        await driver.complete(args.warmup)
        if args.tracemalloc:
            tracemalloc.start()
        first: tracemalloc.Snapshot | None = None
        started = time.perf_counter()
        for runs in range(0, args.runs + 1, args.every):
            if runs:
                await driver.complete(args.every)
            sample = _sample(kind, runs, time.perf_counter() - started, samples, args)
            if args.tracemalloc and first is None:
                first = tracemalloc.take_snapshot()
            samples.append(sample)
            progress(
                f"{kind}: {runs} runs, RSS {sample.rss_mb:.1f} MB "
                f"({sample.rss_growth_mb:+.1f}), heap in use {_mb(sample.heap_in_use_mb)}, "
                f"free {_mb(sample.heap_free_mb)}, SQLite {_mb(sample.sqlite_mb)}, "
                f"{sample.gc_objects} objects, "
                f"{sample.tasks} tasks"
            )
        if args.tracemalloc:
            if (samples[-1].traced_mb or 0.0) - (samples[0].traced_mb or 0.0) > 1.0:
                _print_growth(first, tracemalloc.take_snapshot())
            tracemalloc.stop()
        if ARRIVALS.count != (args.warmup + args.runs) * args.steps:
            raise SystemExit(
                f"{ARRIVALS.count} step calls arrived, expected "
                f"{(args.warmup + args.runs) * args.steps}"
            )
    return samples


def _sample(
    kind: str, runs: int, seconds: float, before: list[Sample], args: argparse.Namespace
) -> Sample:
    gc.collect()
    rss = rss_bytes() / MB
    in_use, free = heap_mb()
    trimmed = trimmed_rss_mb() if args.trim else None
    traced = tracemalloc.get_traced_memory()[0] / MB if args.tracemalloc else None
    base = before[0] if before else None
    return Sample(
        database=kind,
        runs=runs,
        seconds=seconds,
        rss_mb=rss,
        heap_in_use_mb=in_use,
        heap_free_mb=free,
        rss_trimmed_mb=trimmed,
        sqlite_mb=sqlite_mb(),
        gc_objects=len(gc.get_objects()),
        pymalloc_blocks=sys.getallocatedblocks(),
        tasks=len(asyncio.all_tasks()),
        traced_mb=traced,
        rss_growth_mb=rss - base.rss_mb if base else 0.0,
        heap_in_use_growth_mb=(
            in_use - base.heap_in_use_mb
            if base and in_use is not None and base.heap_in_use_mb is not None
            else (0.0 if in_use is not None else None)
        ),
    )


def _mb(value: float | None, sign: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.1f}" if sign else f"{value:.1f}"


def _print_growth(first: tracemalloc.Snapshot | None, last: tracemalloc.Snapshot) -> None:
    if first is None:
        return
    progress("tracemalloc: lines holding most more memory than at the first sample")
    for stat in last.compare_to(first, "lineno")[:TOP_GROWTH_LINES]:
        progress(f"  {stat}")


def _table(samples: list[Sample], args: argparse.Namespace, load_before: float) -> str:
    header = (
        f"{'database':<11} {'runs':>6} {'seconds':>8} {'RSS MB':>7} {'growth':>7} "
        f"{'heap use':>8} {'growth':>7} {'heap free':>9} {'sqlite':>6} {'trimmed':>7} {'objects':>8} "
        f"{'blocks':>8} {'tasks':>5} {'traced':>6}"
    )
    lines = [
        f"System Runtime memory: {args.runs} completed runs of {args.steps} no-op step(s) after "
        f"{args.warmup} warm-up runs, sampled every {args.every} (window {args.window}, "
        f"tenant concurrency {args.tenant_concurrency}, poll {args.poll} s"
        f"{', malloc_trim at each sample' if args.trim else ''}"
        f"{', tracemalloc on (inflates RSS)' if args.tracemalloc else ''})",
        f"machine: nproc={os.cpu_count()}, Python {sys.version.split()[0]}, load avg (1 min) "
        f"{load_before:.2f} before / {os.getloadavg()[0]:.2f} after",
        "columns: heap use/free = glibc mallinfo2 (MB); sqlite = SQLite's own memory (MB, "
        "in heap use); trimmed = RSS after malloc_trim(0); "
        "objects = gc-tracked Python objects; blocks = pymalloc blocks; traced = tracemalloc MB",
        "",
        header,
        "-" * len(header),
    ]
    for sample in samples:
        lines.append(
            f"{sample.database:<11} {sample.runs:>6} {sample.seconds:>8.1f} "
            f"{sample.rss_mb:>7.1f} {sample.rss_growth_mb:>+7.1f} "
            f"{_mb(sample.heap_in_use_mb):>8} {_mb(sample.heap_in_use_growth_mb, True):>7} "
            f"{_mb(sample.heap_free_mb):>9} {_mb(sample.sqlite_mb):>6} {_mb(sample.rss_trimmed_mb):>7} "
            f"{sample.gc_objects:>8} {sample.pymalloc_blocks:>8} {sample.tasks:>5} "
            f"{_mb(sample.traced_mb):>6}"
        )
    lines.append("-" * len(header))
    for kind in dict.fromkeys(sample.database for sample in samples):
        of_kind = [sample for sample in samples if sample.database == kind]
        first, last = of_kind[0], of_kind[-1]
        verdict = "met" if last.rss_growth_mb < GOAL_MB else "NOT met"
        trimmed = (
            f", RSS after malloc_trim {last.rss_trimmed_mb - first.rss_trimmed_mb:+.1f} MB"
            if last.rss_trimmed_mb is not None and first.rss_trimmed_mb is not None
            else ""
        )
        sqlite = (
            f", SQLite's own memory {last.sqlite_mb - first.sqlite_mb:+.1f} MB"
            if last.sqlite_mb is not None and first.sqlite_mb is not None
            else ""
        )
        lines.append(
            f"goal: {kind}: RSS growth over {last.runs} runs < {GOAL_MB:.0f} MB -> "
            f"{last.rss_growth_mb:+.1f} MB ({verdict}; informational, never an assertion); "
            f"heap in use {_mb(last.heap_in_use_growth_mb, True)} MB, Python objects "
            f"{last.gc_objects - first.gc_objects:+d}, pymalloc blocks "
            f"{last.pymalloc_blocks - first.pymalloc_blocks:+d}, tasks "
            f"{last.tasks - first.tasks:+d}{sqlite}{trimmed}"
        )
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> list[Sample]:
    samples: list[Sample] = []
    with tempfile.TemporaryDirectory(prefix="xyn-bench-runtime-memory-") as tmp:
        databases = Databases(Path(tmp), args.postgres)
        try:
            await databases.prepare()
            for kind in databases.kinds:
                if kind == "SQLite" and args.no_sqlite:
                    continue
                samples += await measure(databases, kind, args)
        finally:
            await databases.close()
    return samples


def main(argv: list[str] | None = None) -> None:
    """Parse flags, run, print the table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000, help="runs measured")
    parser.add_argument("--every", type=int, default=1_000, help="runs between samples")
    parser.add_argument("--warmup", type=int, default=1_000, help="runs before the first sample")
    parser.add_argument("--steps", type=int, default=1, help="steps per run")
    parser.add_argument("--window", type=int, default=16, help="runs in flight at most")
    parser.add_argument("--tenant-concurrency", type=int, default=4)
    parser.add_argument("--poll", type=float, default=0.1, help="queue polling interval, s")
    parser.add_argument("--postgres", default=None, help="admin URL of a PostgreSQL server")
    parser.add_argument("--no-sqlite", action="store_true", help="with --postgres: PostgreSQL only")
    parser.add_argument(
        "--trim", action="store_true", help="malloc_trim(0) after each sample, RSS read again"
    )
    parser.add_argument(
        "--tracemalloc", action="store_true", help="trace Python allocations (inflates RSS)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if min(args.runs, args.every, args.steps, args.window) < 1 or args.warmup < 0:
        parser.error("--runs, --every, --steps and --window >= 1, --warmup >= 0")
    if args.no_sqlite and not args.postgres:
        parser.error("--no-sqlite needs --postgres")
    if args.runs % args.every:
        parser.error("--runs must be a multiple of --every")
    quiet_logs()
    load_before = os.getloadavg()[0]
    samples = asyncio.run(run(args))
    if args.json:
        print(json.dumps([asdict(sample) for sample in samples], indent=2))
    else:
        print(_table(samples, args, load_before))


if __name__ == "__main__":
    main()
