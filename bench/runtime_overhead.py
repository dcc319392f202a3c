"""System Runtime against bare DBOS: start-to-first-step latency and step throughput.

Two variants execute the same work, in the same process, in the same run, one
after the other (DBOS is a per-process singleton: each phase launches it and
destroys it), on a fresh migrated database each (SQLite, and PostgreSQL with
``--postgres``):

* ``bare DBOS`` (the baseline): an ``@DBOS.workflow`` calling N ``@DBOS.step``
  functions one after the other. Each step makes the same call a runtime step
  makes: ``GET /api/bench/step`` of an in-process test service through the
  platform's ``ServiceClient`` (internal token, breaker). The workflow is
  enqueued straight on a DBOS queue with the runtime's queue settings (polling
  interval, worker and per-tenant partition concurrency), with the tenant as
  partition key. DBOS gets the runtime's own configuration.
* ``System Runtime``: ``POST /system-runtime/api/workflows/start`` through the
  all-in-one app (httpx ``ASGITransport``, full platform stack, lifespan) of a
  tenant definition with N chained operation steps calling that endpoint.

Measured at the test service, where a step's call arrives, so both variants
are read at the same point:

* latency: from just before the POST (runtime) or the enqueue (bare) to the
  arrival of step 1's call; one run at a time, each awaited to the end before
  the next starts. ``step ms`` is the median time between two consecutive steps'
  arrivals in those runs (the per-step cost at rest).
* throughput: ``--runs`` runs submitted back to back; steps/s is every step call
  divided by the time from the first submission to the last step's arrival.
  ``CPU ms/step`` is the process's CPU time (every thread) from the first
  submission until every run has ended, per step.

Rounds alternate the order of the variants (bare first, then runtime first, ...);
latency percentiles pool the rounds' samples, throughput is the median of the
rounds. The goal line (overhead <= 30 %) is printed for information, never
asserted.

    .venv/bin/python bench/runtime_overhead.py [--postgres URL] [--steps 5]
        [--samples 100] [--runs 50] [--rounds 2] [--poll 0.1] [--tenant-concurrency 4]
        [--profile FILE] [--breakdown] [--timeline] [--no-sqlite] [--json]

``--postgres`` takes an admin URL (e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test);
throwaway databases are created next to it and dropped afterwards, even on error.
``--profile FILE`` writes a cProfile of the runtime's throughput phase (first
round, first database) to FILE and prints its top functions on stderr.
``--breakdown`` times the engine functions the runtime calls by module attribute
(records, key check, service call, start, enqueue) during the latency runs and
prints calls and milliseconds per run on stderr; the engine's files are not changed.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dbos import DBOS, SetEnqueueOptions, SetWorkflowID, WorkflowHandleAsync
from runtime_support import (
    ARRIVALS,
    BENCH_SERVICE,
    DEFINITION,
    STEP_PATH,
    STEP_SCOPE,
    Caller,
    Databases,
    bench_settings,
    build_app,
    chain_spec,
    create_caller,
    percentile,
    progress,
    quiet_logs,
    runtime_settings,
    serving,
)

from xynergy.platform import services as platform_services
from xynergy.platform.runtime import Platform
from xynergy.system_runtime.config import RuntimeSettings
from xynergy.system_runtime.engine import calls, control, records, workflow
from xynergy.system_runtime.engine.host import (
    _dbos_config,
    _route_dbos_logs_through_ours,
    migrate_system_database_off_loop,
)
from xynergy.system_runtime.engine.record_writer import RecordWriter
from xynergy.system_runtime.runs import service as runs_service

GOAL_OVERHEAD = 0.30
BARE = "bare DBOS"
RUNTIME = "System Runtime"
BARE_QUEUE = "bench-bare"
START = "/system-runtime/api/workflows/start"
WARMUP_RUNS = 5
RESULT_POLL_SECONDS = 0.02
RUN_TIMEOUT_SECONDS = 60.0


# --- the bare DBOS workflow ---------------------------------------------------------------


@dataclass(slots=True)
class _BareTarget:
    platform: Platform | None = None
    caller: Caller | None = None


_BARE = _BareTarget()


@DBOS.step(name="bench.bare_step")
async def bare_step(tag: str, index: int) -> Any:
    """The same call a runtime step makes: the bench service through the ServiceClient."""
    assert _BARE.platform is not None
    assert _BARE.caller is not None
    response = await _BARE.platform.services.request(
        BENCH_SERVICE,
        "GET",
        STEP_PATH,
        caller=_BARE.caller.step_context(),
        scopes=frozenset({STEP_SCOPE}),
        params={"tag": tag, "index": str(index)},
    )
    if response.status != 200:
        raise RuntimeError(f"bench step answered {response.status}")
    return response.json()


@DBOS.workflow(name="bench.bare_run")
async def bare_run(tag: str, steps: int) -> str:
    for index in range(steps):
        await bare_step(tag, index)
    return "succeeded"


# --- where the time goes (--breakdown) ----------------------------------------------------------

# (owner, attribute, label): what the engine calls by module attribute, so wrapping the
# attribute times every call without editing the engine. Nested rows overlap: a step's
# row includes its key check, record writes and the service call.
_TIMED: list[tuple[Any, str, str]] = [
    (runs_service, "start_run", "POST: start_run (definition, checks, inserts, enqueue)"),
    (runs_service, "find_definition", "POST:   find_definition"),
    (control, "enqueue", "POST:   DBOS enqueue"),
    (records, "load_run", "run: records.load_run (run; steps of a fork)"),
    (records, "set_run_status", "run: records.set_run_status"),
    (workflow, "_operation_step", "step: DBOS step body (_operation_step)"),
    (records, "set_step", "step: records.set_step (approvals, waits)"),
    (records, "start_attempt", "step: records.start_attempt (retries)"),
    (RecordWriter, "_commit", "writer: a group commit of row updates (off the path)"),
    (calls, "_ensure_key_usable", "step: calls._ensure_key_usable (key check)"),
    (platform_services.ServiceClient, "request", "step: ServiceClient.request (the call)"),
]


@dataclass(slots=True)
class Breakdown:
    """Wall time and calls per wrapped function, while ``enabled``."""

    enabled: bool = False
    seconds: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    _saved: list[tuple[Any, str, Any]] = field(default_factory=list)

    def install(self) -> None:
        for owner, name, label in _TIMED:
            original = getattr(owner, name)
            self._saved.append((owner, name, original))
            setattr(owner, name, self._wrap(original, label))

    def uninstall(self) -> None:
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)
        self._saved.clear()

    def _wrap(self, original: Any, label: str) -> Any:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            if not self.enabled:
                return await original(*args, **kwargs)
            started = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - started
                self.calls[label] = self.calls.get(label, 0) + 1

        return timed

    def report(self, variant: str, database: str, runs: int, run_ms: float) -> str:
        lines = [
            f"where a run's wall time goes: {variant}, {database}, {runs} runs one at a time "
            f"(mean per run; nested rows overlap; start to last step's arrival {run_ms:.1f} ms)",
            f"{'function':<58} {'calls/run':>9} {'ms/run':>8} {'ms/call':>8}",
        ]
        for _, _, label in _TIMED:
            if label in self.seconds:
                total = self.seconds[label] * 1000
                count = self.calls[label]
                lines.append(
                    f"{label:<58} {count / runs:>9.1f} {total / runs:>8.2f} {total / count:>8.2f}"
                )
        return "\n".join(lines)


BREAKDOWN = Breakdown()


# --- one phase: one variant on one fresh database ------------------------------------------------


@dataclass(slots=True)
class Phase:
    database: str
    variant: str
    latencies_ms: list[float] = field(default_factory=list)
    step_gaps_ms: list[float] = field(default_factory=list)
    steps_per_second: float = 0.0
    cpu_ms_per_step: float = 0.0


Submit = Callable[[str], Awaitable[str]]


async def _await_run(workflow_id: str) -> None:
    handle: WorkflowHandleAsync[str] = await DBOS.retrieve_workflow_async(workflow_id)
    result = await asyncio.wait_for(
        handle.get_result(polling_interval_sec=RESULT_POLL_SECONDS), RUN_TIMEOUT_SECONDS
    )
    if result != "succeeded":
        raise SystemExit(f"run {workflow_id} ended {result!r}")


async def _measure(
    phase: Phase, submit: Submit, args: argparse.Namespace, profile: cProfile.Profile | None
) -> None:
    for _ in range(WARMUP_RUNS):
        await _await_run(await submit(uuid.uuid4().hex))
    ARRIVALS.reset()
    BREAKDOWN.seconds.clear()
    BREAKDOWN.calls.clear()
    run_ms: list[float] = []
    for _ in range(args.samples):
        tag = uuid.uuid4().hex
        BREAKDOWN.enabled = args.breakdown
        started = time.perf_counter()
        await _await_run(await submit(tag))
        BREAKDOWN.enabled = False
        run_ms.append((ARRIVALS.last[tag] - started) * 1000)
        phase.latencies_ms.append((ARRIVALS.first[tag] - started) * 1000)
        if args.steps > 1:
            phase.step_gaps_ms.append(
                (ARRIVALS.last[tag] - ARRIVALS.first[tag]) * 1000 / (args.steps - 1)
            )
    if args.breakdown:
        progress(
            BREAKDOWN.report(phase.variant, phase.database, args.samples, statistics.mean(run_ms))
        )
    ARRIVALS.reset()
    gc.collect()
    tags = [uuid.uuid4().hex for _ in range(args.runs)]
    if profile is not None:
        profile.enable()
    started, cpu_started = time.perf_counter(), time.process_time()
    ids: list[str] = []
    submitted: list[float] = []
    for tag in tags:
        ids.append(await submit(tag))
        submitted.append(time.perf_counter())
    await ARRIVALS.wait_for_count(args.runs * args.steps, RUN_TIMEOUT_SECONDS * 5)
    phase.steps_per_second = args.runs * args.steps / (ARRIVALS.last_time - started)
    if profile is not None:
        profile.disable()
    if args.timeline:
        progress(_timeline(phase, tags, submitted, started))
    for workflow_id in ids:
        await _await_run(workflow_id)
    # Every thread of the process (DBOS's included), from the first submission until
    # every run has ended: the figure other processes' load moves least.
    phase.cpu_ms_per_step = (time.process_time() - cpu_started) * 1000 / (args.runs * args.steps)


def _timeline(phase: Phase, tags: list[str], submitted: list[float], started: float) -> str:
    """Per run of the throughput burst: when its submission returned, its first step
    arrived and its last step arrived (ms from the first submission)."""
    lines = [f"timeline: {phase.variant}, {phase.database} (ms from the first submission)"]
    lines.append(f"{'run':>4} {'submitted':>10} {'first step':>11} {'last step':>10}")
    for number, (tag, done) in enumerate(zip(tags, submitted, strict=True)):
        first = (ARRIVALS.first[tag] - started) * 1000
        last = (ARRIVALS.last[tag] - started) * 1000
        lines.append(f"{number:>4} {(done - started) * 1000:>10.1f} {first:>11.1f} {last:>10.1f}")
    return "\n".join(lines)


async def runtime_phase(
    databases: Databases,
    kind: str,
    args: argparse.Namespace,
    runtime: RuntimeSettings,
    profile: cProfile.Profile | None,
) -> Phase:
    url, data_dir = await databases.fresh(kind)
    app = build_app(bench_settings(url, data_dir), runtime)
    phase = Phase(kind, RUNTIME)
    async with serving(app) as client:
        caller = await create_caller(app.state.platform, chain_spec(args.steps))

        async def submit(tag: str) -> str:
            response = await client.post(
                START,
                json={"definition": DEFINITION, "input": {"tag": tag}},
                headers=caller.headers,
            )
            if response.status_code != 202:
                raise SystemExit(f"start answered {response.status_code}: {response.text}")
            return str(response.json()["id"])

        await _measure(phase, submit, args, profile)
    return phase


async def bare_phase(
    databases: Databases, kind: str, args: argparse.Namespace, runtime: RuntimeSettings
) -> Phase:
    url, data_dir = await databases.fresh(kind)
    settings = bench_settings(url, data_dir)
    app = build_app(settings, None)
    phase = Phase(kind, BARE)
    async with serving(app):
        platform: Platform = app.state.platform
        _BARE.platform = platform
        _BARE.caller = await create_caller(platform, None)
        # The runtime's own DBOS configuration and queue settings (engine/host.py).
        # As engine/host.py does: DBOS's tables first, off the loop; launch only verifies.
        await migrate_system_database_off_loop(settings, runtime)
        DBOS(config=_dbos_config(settings, runtime))
        try:
            DBOS.launch()
            _route_dbos_logs_through_ours()
            await DBOS.register_queue_async(
                BARE_QUEUE,
                worker_concurrency=runtime.worker_concurrency,
                partition_concurrency=runtime.tenant_concurrency,
                polling_interval_sec=runtime.queue_poll_seconds,
                on_conflict="always_update",
            )
            partition = _BARE.caller.tenant_id

            async def submit(tag: str) -> str:
                with SetWorkflowID(tag), SetEnqueueOptions(queue_partition_key=partition):
                    handle = await DBOS.enqueue_workflow_async(
                        BARE_QUEUE, bare_run, tag, args.steps
                    )
                return handle.get_workflow_id()

            await _measure(phase, submit, args, None)
        finally:
            await asyncio.to_thread(DBOS.destroy)
            _BARE.platform = _BARE.caller = None
    return phase


# --- the report -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    database: str
    variant: str
    samples: int
    p50_ms: float
    p99_ms: float
    step_ms: float
    steps_per_second: float
    cpu_ms_per_step: float
    latency_ratio: float
    throughput_ratio: float
    cpu_ratio: float
    # Each round's runtime steps/s over the same round's bare DBOS steps/s, in round
    # order: the spread the median hides (bare rows: empty).
    round_ratios: tuple[float, ...] = ()


def _rows(phases: list[Phase]) -> list[Row]:
    rows: list[Row] = []
    for kind in dict.fromkeys(phase.database for phase in phases):
        pooled: dict[str, tuple[list[float], list[float], list[float], list[float]]] = {}
        for phase in phases:
            if phase.database != kind:
                continue
            latencies, gaps, rates, cpu = pooled.setdefault(phase.variant, ([], [], [], []))
            latencies += phase.latencies_ms
            gaps += phase.step_gaps_ms
            rates.append(phase.steps_per_second)
            cpu.append(phase.cpu_ms_per_step)
        base_p50 = statistics.median(pooled[BARE][0])
        base_rate = statistics.median(pooled[BARE][2])
        base_cpu = statistics.median(pooled[BARE][3])
        paired = tuple(
            runtime / bare
            for runtime, bare in zip(pooled[RUNTIME][2], pooled[BARE][2], strict=True)
        )
        for variant in (BARE, RUNTIME):
            latencies, gaps, rates, cpu = pooled[variant]
            p50, rate = statistics.median(latencies), statistics.median(rates)
            rows.append(
                Row(
                    kind,
                    variant,
                    len(latencies),
                    p50,
                    percentile(latencies, 0.99),
                    statistics.median(gaps) if gaps else 0.0,
                    rate,
                    statistics.median(cpu),
                    p50 / base_p50,
                    rate / base_rate,
                    statistics.median(cpu) / base_cpu,
                    paired if variant == RUNTIME else (),
                )
            )
    return rows


def _goal_lines(rows: list[Row]) -> list[str]:
    lines = []
    for row in rows:
        if row.variant != RUNTIME:
            continue
        for what, overhead in (
            ("latency p50", row.latency_ratio - 1),
            ("time per step at throughput", 1 / row.throughput_ratio - 1),
            ("CPU per step at throughput", row.cpu_ratio - 1),
        ):
            verdict = "met" if overhead <= GOAL_OVERHEAD else "NOT met"
            lines.append(
                f"goal: {row.database} {what}: runtime overhead <= {GOAL_OVERHEAD:.0%} over bare "
                f"DBOS -> {overhead:+.0%} ({verdict}; informational, never an assertion)"
            )
    return lines


def _table(rows: list[Row], args: argparse.Namespace, load_before: float) -> str:
    header = (
        f"{'database':<11} {'variant':<15} {'runs':>5} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'step ms':>8} {'steps/s':>8} {'CPU ms/step':>11} {'p50 ratio':>9} {'steps/s ratio':>13}"
    )
    lines = [
        f"start-to-first-step latency ({args.samples} runs x {args.rounds} rounds, one at a time) "
        f"and step throughput ({args.runs} runs submitted at once, median of rounds); "
        f"{args.steps} chained no-op steps per run",
        f"machine: nproc={os.cpu_count()}, Python {sys.version.split()[0]}, load avg (1 min) "
        f"{load_before:.2f} before / {os.getloadavg()[0]:.2f} after",
        f"queue:   poll {args.poll} s, tenant (partition) concurrency {args.tenant_concurrency}, "
        "the same for both variants; ratios against bare DBOS in the same run",
        "",
        header,
        "-" * len(header),
    ]
    for row in rows:
        lines.append(
            f"{row.database:<11} {row.variant:<15} {row.samples:>5} {row.p50_ms:>8.1f} "
            f"{row.p99_ms:>8.1f} {row.step_ms:>8.2f} {row.steps_per_second:>8.1f} "
            f"{row.cpu_ms_per_step:>11.2f} "
            f"{row.latency_ratio:>9.2f} {row.throughput_ratio:>13.2f}"
        )
    lines.append("-" * len(header))
    for row in rows:
        if row.round_ratios:
            each = " ".join(f"{ratio:.2f}" for ratio in row.round_ratios)
            lines.append(
                f"{row.database} steps/s ratio per round (runtime / bare of the same round): "
                f"{each}; min {min(row.round_ratios):.2f}, median "
                f"{statistics.median(row.round_ratios):.2f}, max {max(row.round_ratios):.2f}"
            )
    lines += _goal_lines(rows)
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> list[Phase]:
    runtime = runtime_settings(tenant_concurrency=args.tenant_concurrency, poll_seconds=args.poll)
    phases: list[Phase] = []
    profile = cProfile.Profile() if args.profile else None
    with tempfile.TemporaryDirectory(prefix="xyn-bench-runtime-") as tmp:
        databases = Databases(Path(tmp), args.postgres)
        try:
            await databases.prepare()
            for kind in databases.kinds:
                if kind == "SQLite" and args.no_sqlite:
                    continue
                for round_number in range(args.rounds):
                    order = [BARE, RUNTIME] if round_number % 2 == 0 else [RUNTIME, BARE]
                    for variant in order:
                        progress(f"{kind}: round {round_number + 1}, {variant}")
                        if variant == BARE:
                            phases.append(await bare_phase(databases, kind, args, runtime))
                        else:
                            phases.append(
                                await runtime_phase(databases, kind, args, runtime, profile)
                            )
                            if profile is not None:
                                _print_profile(profile, args.profile)
                                profile = None
        finally:
            await databases.close()
    return phases


def main(argv: list[str] | None = None) -> None:
    """Parse flags, run, print the table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=None, help="admin URL of a PostgreSQL server")
    parser.add_argument("--steps", type=int, default=5, help="steps per run")
    parser.add_argument("--samples", type=int, default=100, help="latency runs per round")
    parser.add_argument("--runs", type=int, default=50, help="runs of the throughput burst")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--poll", type=float, default=0.1, help="queue polling interval, s")
    parser.add_argument("--tenant-concurrency", type=int, default=4)
    parser.add_argument("--profile", default=None, help="write a cProfile of the runtime")
    parser.add_argument("--breakdown", action="store_true", help="time the engine's calls (stderr)")
    parser.add_argument(
        "--timeline", action="store_true", help="print each burst run's times (stderr)"
    )
    parser.add_argument("--no-sqlite", action="store_true", help="with --postgres: PostgreSQL only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.no_sqlite and not args.postgres:
        parser.error("--no-sqlite needs --postgres")
    if args.samples < 10 or args.runs < 1 or args.steps < 1 or args.rounds < 1:
        parser.error("--samples >= 10, --runs, --steps and --rounds >= 1")
    quiet_logs()
    load_before = os.getloadavg()[0]
    if args.breakdown:
        BREAKDOWN.install()
    phases = asyncio.run(run(args))
    rows = _rows(phases)
    if args.json:
        print(json.dumps([asdict(row) for row in rows], indent=2))
    else:
        print(_table(rows, args, load_before))


def _print_profile(profile: cProfile.Profile, path: str) -> None:
    profile.dump_stats(path)
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(40)
    progress(out.getvalue())


if __name__ == "__main__":
    main()
