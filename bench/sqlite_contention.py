"""SQLite write contention (issue 10, item 6): another tenant's small writes while
N tenants bulk-import big files into the same SQLite database.

    .venv/bin/python bench/sqlite_contention.py [--imports 3] [--rows 200000]
    .venv/bin/python bench/sqlite_contention.py --compare-ref HEAD~1   # before/after table

For each phase a fresh data dir is migrated, `xynergy serve --service aso-engine`
serves it on 127.0.0.1 (every rate limit lifted) and an aiohttp client drives:

* ``uncontended``: the other tenant alone, for ``--baseline-seconds``;
* ``best_effort`` / ``all_or_nothing``: ``--imports`` tenants each stream the same
  ``--rows``-row CSV to ``POST /api/keywords/bulk-import?mode=...`` at once, while
  the other tenant keeps creating keywords (``POST /api/keywords``,
  ``--writers`` loops with ``--think-ms`` between writes) until every import ends.

Rows: the other tenant's success rate, its 503 and 500 counts (``fast 503``: answered
in under half the busy timeout, so refused without waiting, as an upgrade from a
read transaction would be), latency p50/p99 of every write (503 included) and of
its reads (no lock: the event loop's and CPU's share), and p99 as a ratio to the
uncontended phase of the same code. ``--compare-ref REF`` (or ``--compare-src DIR``)
runs the same phases on an older tree (``git archive REF src``, read only) and adds
an after/before table. Bounded: every request has a timeout and the whole run a
deadline; every server is stopped by its PID. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp

# isort: split
# bench's own modules: bench/ is sys.path[0] when run as a script.
from prepare import platform_env, scrubbed_env
from report import machine
from servers import HOST, _free_port, _stop, _wait_ready
from sqlalchemy.ext.asyncio import async_sessionmaker

from xynergy.platform.config import Settings
from xynergy.platform.db.engine import create_engine_from_settings
from xynergy.platform.db.migrate import upgrade_to_head
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.tenancy.service import create_key, create_tenant

SCOPES = ["keywords:read", "keywords:write"]
CHUNK_BYTES = 65_536
IMPORT_TIMEOUT_SECONDS = 1800.0
PROBE_TIMEOUT_SECONDS = 120.0
PHASE_DEADLINE_SECONDS = 2400.0
# The servers run with the default XYNERGY_SQLITE_BUSY_TIMEOUT_MS.
BUSY_TIMEOUT_SECONDS = Settings.model_fields["sqlite_busy_timeout_ms"].default / 1000
MODES = ("best_effort", "all_or_nothing")


@dataclass
class PhaseResult:
    code: str
    phase: str
    writes: int = 0
    ok: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    fast_503: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    read_p50_ms: float = 0.0
    read_p99_ms: float = 0.0
    imports: list[str] = field(default_factory=list)
    import_seconds: float = 0.0
    phase_seconds: float = 0.0

    @property
    def ok_share(self) -> float:
        return self.ok / self.writes if self.writes else 0.0


def write_rows(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as handle:
        handle.write("phrase,locale,tags,target_url,intent\n")
        for index in range(rows):
            handle.write(
                f"keyword number {index} for bulk import,en-US,seo|bulk|batch {index % 7},"
                f"https://example.com/landing/pages/keyword-{index}?campaign=spring,commercial\n"
            )


def prepare(data_dir: Path, imports: int) -> tuple[str, list[str]]:
    """Migrate ``data_dir``; the other tenant's key and one key per importing tenant."""
    settings = Settings(data_dir=data_dir, database_url=None, redis_url=None)
    upgrade_to_head(settings)

    async def create() -> tuple[str, list[str]]:
        engine = create_engine_from_settings(settings)
        try:
            secrets_: list[str] = []
            async with unit_of_work(async_sessionmaker(engine, expire_on_commit=False)) as session:
                for name in ["other", *(f"importer-{n}" for n in range(imports))]:
                    tenant = await create_tenant(session, name=name)
                    key = await create_key(session, tenant_id=tenant.id, name=name, scopes=SCOPES)
                    secrets_.append(key.secret)
            return secrets_[0], secrets_[1:]
        finally:
            await engine.dispose()

    return asyncio.run(create())


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk


async def _import(
    http: aiohttp.ClientSession, base: str, key: str, path: Path, mode: str
) -> tuple[str, float]:
    started = time.perf_counter()
    try:
        async with http.post(
            f"{base}/api/keywords/bulk-import",
            params={"mode": mode},
            data=_file_chunks(path),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "text/csv"},
            timeout=aiohttp.ClientTimeout(total=IMPORT_TIMEOUT_SECONDS),
        ) as response:
            await response.read()
            outcome = str(response.status)
    except (aiohttp.ClientError, TimeoutError) as exc:
        outcome = type(exc).__name__
    return outcome, time.perf_counter() - started


async def _probe(
    http: aiohttp.ClientSession,
    base: str,
    key: str,
    label: str,
    stop: asyncio.Event,
    think: float,
    samples: list[tuple[str, float]],
    *,
    write: bool,
) -> None:
    """The other tenant: a write (a new keyword) or a read (one page) per turn."""
    number = 0
    headers = {"Authorization": f"Bearer {key}"}
    timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT_SECONDS)
    while not stop.is_set():
        number += 1
        started = time.perf_counter()
        try:
            if write:
                body = {"phrase": f"probe {label} {number}", "locale": "en-US"}
                request = http.post(
                    f"{base}/api/keywords", json=body, headers=headers, timeout=timeout
                )
            else:
                request = http.get(f"{base}/api/keywords?limit=1", headers=headers, timeout=timeout)
            async with request as response:
                await response.read()
                outcome = str(response.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            outcome = type(exc).__name__
        samples.append((outcome, time.perf_counter() - started))
        try:
            await asyncio.wait_for(stop.wait(), think)
        except TimeoutError:
            pass


@dataclass
class _Samples:
    writes: list[tuple[str, float]] = field(default_factory=list)
    reads: list[tuple[str, float]] = field(default_factory=list)
    imports: list[tuple[str, float]] = field(default_factory=list)


async def _drive(
    args: argparse.Namespace, base: str, other: str, keys: list[str], phase: str, csv: Path
) -> _Samples:
    samples = _Samples()
    stop = asyncio.Event()
    think = args.think_ms / 1000
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        probes = [
            asyncio.create_task(
                _probe(http, base, other, f"{n}", stop, think, samples.writes, write=True)
            )
            for n in range(args.writers)
        ]
        # A read takes no lock: its latency is the event loop's and the CPU's share.
        probes.append(
            asyncio.create_task(
                _probe(http, base, other, "r", stop, think, samples.reads, write=False)
            )
        )
        try:
            if phase == "uncontended":
                await asyncio.sleep(args.baseline_seconds)
            else:
                samples.imports = await asyncio.wait_for(
                    asyncio.gather(*(_import(http, base, key, csv, phase) for key in keys)),
                    PHASE_DEADLINE_SECONDS,
                )
        finally:
            stop.set()
            await asyncio.gather(*probes)
    return samples


@contextmanager
def serve_aso_engine(env: dict[str, str], log: Path, headers: dict[str, str]) -> Iterator[str]:
    """``xynergy serve --service aso-engine`` (as deployed, from whichever tree
    ``env`` selects) until the block ends; yields its base URL once it answers."""
    port = _free_port()
    command = [
        sys.executable,
        "-c",
        "from xynergy.cli import main; main()",
        "serve",
        "--service",
        "aso-engine",
        "--host",
        HOST,
        "--port",
        str(port),
    ]
    base = f"http://{HOST}:{port}"
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            _wait_ready(process, f"{base}/api/keywords?limit=1", headers, log)
            yield base
        finally:
            _stop(process)


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


def run_phase(args: argparse.Namespace, code: str, src: Path | None, phase: str,
              csv: Path, work: Path) -> PhaseResult:  # fmt: skip
    data_dir = Path(tempfile.mkdtemp(prefix=f"{phase}-", dir=work))
    other, keys = prepare(data_dir, args.imports)
    env = {**scrubbed_env(), **platform_env(data_dir, access_log=False, redis_url=None)}
    if src is not None:
        # Ahead of the editable install: the server runs the older tree's code.
        env["PYTHONPATH"] = str(src)
    headers = {"Authorization": f"Bearer {other}"}
    print(f"[{code}] {phase} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    with serve_aso_engine(env, work / f"{code}-{phase}.log", headers) as base:
        samples = asyncio.run(_drive(args, base, other, keys, phase, csv))
    latencies = sorted(seconds * 1000 for _, seconds in samples.writes)
    reads = sorted(seconds * 1000 for _, seconds in samples.reads)
    statuses = Counter(outcome for outcome, _ in samples.writes)
    return PhaseResult(
        code=code,
        phase=phase,
        writes=len(samples.writes),
        ok=sum(n for status, n in statuses.items() if status.startswith("2")),
        statuses=dict(statuses),
        fast_503=sum(
            outcome == "503" and seconds < BUSY_TIMEOUT_SECONDS / 2
            for outcome, seconds in samples.writes
        ),
        p50_ms=_percentile(latencies, 0.50),
        p99_ms=_percentile(latencies, 0.99),
        read_p50_ms=_percentile(reads, 0.50),
        read_p99_ms=_percentile(reads, 0.99),
        imports=[outcome for outcome, _ in samples.imports],
        import_seconds=max((seconds for _, seconds in samples.imports), default=0.0),
        phase_seconds=time.perf_counter() - started,
    )


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.1f}x" if base else "-"


def format_results(results: list[PhaseResult], args: argparse.Namespace) -> str:
    lines = [
        f"{args.imports} concurrent imports of {args.rows} rows; the other tenant: "
        f"{args.writers} writer(s) and 1 reader, {args.think_ms} ms between requests",
        "",
        f"{'code':<8}{'phase':<16}{'writes':>7}{'ok %':>7}{'503':>5}{'fast':>5}{'500':>5}"
        f"{'w p50 ms':>10}{'w p99 ms':>10}{'p99/base':>9}{'r p50 ms':>10}{'r p99 ms':>10}"
        "  imports (max s)",
    ]
    for result in results:
        base = next(r for r in results if r.code == result.code and r.phase == "uncontended")
        imports = ",".join(result.imports) or "-"
        lines.append(
            f"{result.code:<8}{result.phase:<16}{result.writes:>7}{100 * result.ok_share:>7.1f}"
            f"{result.statuses.get('503', 0):>5}{result.fast_503:>5}"
            f"{result.statuses.get('500', 0):>5}"
            f"{result.p50_ms:>10.1f}{result.p99_ms:>10.1f}{_ratio(result.p99_ms, base.p99_ms):>9}"
            f"{result.read_p50_ms:>10.1f}{result.read_p99_ms:>10.1f}"
            f"  {imports} ({result.import_seconds:.0f})"
        )
    before = {r.phase: r for r in results if r.code == "before"}
    if before:
        lines += [
            "",
            f"{'after vs before':<18}{'ok % before':>12}{'ok % after':>12}"
            f"{'w p99 before':>14}{'w p99 after':>13}{'ratio':>8}",
        ]
        for result in results:
            old = before.get(result.phase)
            if result.code != "after" or old is None:
                continue
            lines.append(
                f"{result.phase:<18}{100 * old.ok_share:>12.1f}{100 * result.ok_share:>12.1f}"
                f"{old.p99_ms:>14.1f}{result.p99_ms:>13.1f}{_ratio(result.p99_ms, old.p99_ms):>8}"
            )
    meta = machine()
    lines += ["", f"machine: nproc={meta['nproc']} loadavg_1m={meta['loadavg_1m']}"]
    return "\n".join(lines)


def _archive(ref: str, target: Path) -> Path:
    """``src`` of ``ref`` extracted under ``target`` (git archive: the checkout is untouched)."""
    archive = subprocess.run(
        ["git", "archive", ref, "src"],  # noqa: S607 - git from PATH, fixed arguments
        check=True,
        capture_output=True,
        cwd=Path(__file__).resolve().parents[1],
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)  # noqa: S607
    return target / "src"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imports", type=int, default=3)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--think-ms", type=int, default=50)
    parser.add_argument("--baseline-seconds", type=float, default=5.0)
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated import modes")
    parser.add_argument("--compare-ref", metavar="REF", help="also run git REF's src (before)")
    parser.add_argument("--compare-src", metavar="DIR", type=Path, help="also run this src dir")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args()
    phases = ["uncontended", *(mode for mode in args.modes.split(",") if mode in MODES)]

    results: list[PhaseResult] = []
    with tempfile.TemporaryDirectory(prefix="xyn-bench-contention-") as tmp:
        work = Path(tmp)
        csv = work / "keywords.csv"
        write_rows(csv, args.rows)
        trees: list[tuple[str, Path | None]] = []
        if args.compare_ref:
            (work / "before").mkdir()
            trees.append(("before", _archive(args.compare_ref, work / "before")))
        elif args.compare_src:
            trees.append(("before", args.compare_src.resolve()))
        trees.append(("after", None))
        for phase in phases:
            # Phases of both trees back to back, so machine drift hits both alike.
            for code, src in trees:
                results.append(run_phase(args, code, src, phase, csv, work))
    if args.json:
        print(json.dumps({"machine": machine(), "results": [asdict(r) for r in results]}, indent=2))
        return
    print(format_results(results, args))


if __name__ == "__main__":
    main()
