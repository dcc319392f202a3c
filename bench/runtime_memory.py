"""System Runtime memory over many completed runs: does the process grow?

One all-in-one app in process (System Runtime plus a tiny test service, httpx
``ASGITransport``, lifespan, fresh migrated database) starts runs of a tenant
definition of ``--steps`` no-op operation steps through
``POST /system-runtime/api/workflows/start``, keeping at most ``--window`` in
flight, and waits for each to end (one bounded status query of the in-flight
runs every 50 ms). Every run must succeed.

After ``--warmup`` runs, tracemalloc starts and the first sample is taken; then
one every ``--every`` runs until ``--runs`` more have completed. Before each
sample the window drains (no run in flight) and a full ``gc.collect()`` runs.
A sample holds the process's RSS (``/proc/self/statm``), the memory tracemalloc
traces (Python allocations since it started), and the number of asyncio tasks.
Growth is against the first sample; the goal (< 32 MB over 10,000 runs) is
printed for information, never asserted. With growth, the lines tracemalloc
holds most more of at the end than at the first sample go to stderr.

    .venv/bin/python bench/runtime_memory.py [--runs 10000] [--every 1000] [--warmup 1000]
        [--steps 1] [--window 16] [--tenant-concurrency 4] [--postgres URL [--no-sqlite]]
        [--json]

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
    traced_mb: float
    tasks: int
    rss_growth_mb: float
    traced_growth_mb: float


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


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
        tracemalloc.start()
        first: tracemalloc.Snapshot | None = None
        started = time.perf_counter()
        for runs in range(0, args.runs + 1, args.every):
            if runs:
                await driver.complete(args.every)
            gc.collect()
            rss = _rss_bytes() / MB
            traced = tracemalloc.get_traced_memory()[0] / MB
            if first is None:
                first = tracemalloc.take_snapshot()
            base = samples[0] if samples else None
            samples.append(
                Sample(
                    kind,
                    runs,
                    time.perf_counter() - started,
                    rss,
                    traced,
                    len(asyncio.all_tasks()),
                    rss - base.rss_mb if base else 0.0,
                    traced - base.traced_mb if base else 0.0,
                )
            )
            progress(
                f"{kind}: {runs} runs, RSS {rss:.1f} MB, traced {traced:.1f} MB, "
                f"{len(asyncio.all_tasks())} tasks"
            )
        if samples[-1].traced_growth_mb > 1.0:
            _print_growth(first, tracemalloc.take_snapshot())
        tracemalloc.stop()
        if ARRIVALS.count != (args.warmup + args.runs) * args.steps:
            raise SystemExit(
                f"{ARRIVALS.count} step calls arrived, expected "
                f"{(args.warmup + args.runs) * args.steps}"
            )
    return samples


def _print_growth(first: tracemalloc.Snapshot | None, last: tracemalloc.Snapshot) -> None:
    if first is None:
        return
    progress("tracemalloc: lines holding most more memory than at the first sample")
    for stat in last.compare_to(first, "lineno")[:TOP_GROWTH_LINES]:
        progress(f"  {stat}")


def _table(samples: list[Sample], args: argparse.Namespace, load_before: float) -> str:
    header = (
        f"{'database':<11} {'runs':>6} {'seconds':>8} {'RSS MB':>8} {'growth':>8} "
        f"{'traced MB':>9} {'growth':>8} {'tasks':>6}"
    )
    lines = [
        f"System Runtime memory: {args.runs} completed runs of {args.steps} no-op step(s) after "
        f"{args.warmup} warm-up runs, sampled every {args.every} (window {args.window}, "
        f"tenant concurrency {args.tenant_concurrency}, poll {args.poll} s)",
        f"machine: nproc={os.cpu_count()}, Python {sys.version.split()[0]}, load avg (1 min) "
        f"{load_before:.2f} before / {os.getloadavg()[0]:.2f} after",
        "",
        header,
        "-" * len(header),
    ]
    for sample in samples:
        lines.append(
            f"{sample.database:<11} {sample.runs:>6} {sample.seconds:>8.1f} {sample.rss_mb:>8.1f} "
            f"{sample.rss_growth_mb:>+8.1f} {sample.traced_mb:>9.1f} "
            f"{sample.traced_growth_mb:>+8.1f} {sample.tasks:>6}"
        )
    lines.append("-" * len(header))
    for kind in dict.fromkeys(sample.database for sample in samples):
        last = [sample for sample in samples if sample.database == kind][-1]
        growth = max(last.rss_growth_mb, last.traced_growth_mb)
        verdict = "met" if growth < GOAL_MB else "NOT met"
        lines.append(
            f"goal: {kind}: growth over {last.runs} runs < {GOAL_MB:.0f} MB -> RSS "
            f"{last.rss_growth_mb:+.1f} MB, traced {last.traced_growth_mb:+.1f} MB "
            f"({verdict}; informational, never an assertion)"
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
