"""The Platform Dashboard's cached ``GET /api/status`` against bare FastAPI (issue 14).

    .venv/bin/python bench/dashboard_status.py
    .venv/bin/python bench/dashboard_status.py --duration 5 --rounds 2

Rows, interleaved per round like bench/run.py (each row the median over rounds):
bare FastAPI ``GET /ping`` on plain uvicorn, and the dashboard alone
(``xynergy serve --service platform-dashboard``'s server and settings, access log
on) answering ``GET /api/status`` with a ``metrics:read`` key. The status window
is the default 30 s, so the load is answered from one check per window: the
runner reads the dashboard's ``/metrics`` afterwards and refuses the row if more
checks ran than windows passed. The goal (status >= 60 % of bare req/s) is
printed, never asserted. Traffic stays on 127.0.0.1; servers are stopped by PID.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

# isort: split
# bench's own modules: bench/ is sys.path[0] when run as a script.
from load import LoadGenerator, LoadResult, pick_generator
from prepare import BenchKeys, create_bench_keys, platform_env, scrubbed_env
from report import format_table, machine, summarize
from servers import PLAIN, SERVERS, XYNERGY, serve, status

BARE = "bare FastAPI (GET /ping)"
STATUS = "dashboard GET /api/status (cached, access log on)"
STATUS_PATH = "/api/status"
WINDOW_SECONDS = 30.0
COMPUTATIONS = "xynergy_dashboard_status_computations_total"


def _computations(base_url: str, headers: dict[str, str]) -> float:
    request = urllib.request.Request(base_url + "/metrics", headers=headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        for line in response.read().decode().splitlines():
            if line.startswith(COMPUTATIONS + " "):
                return float(line.split(" ", 1)[1])
    return 0.0


def _measure(
    name: str, generator: LoadGenerator, args: argparse.Namespace, workdir: Path, keys: BenchKeys
) -> LoadResult:
    data_dir = workdir / "data"
    if name == BARE:
        headers = {"Authorization": f"Bearer {keys.ping}"}
        env, factory, path, server = scrubbed_env(), "bare_app", "/ping", PLAIN
    else:
        # The bench tenant's key that holds metrics:read.
        headers = {"Authorization": f"Bearer {keys.trending}"}
        env = {**scrubbed_env(), **platform_env(data_dir, access_log=True, redis_url=None)}
        factory, path, server = "dashboard_app", STATUS_PATH, XYNERGY
    log = workdir / f"{factory}.log"
    with serve(factory, env, log, headers, path, server) as served:
        if name == STATUS and status(served.url, {}) != 401:
            raise RuntimeError("GET /api/status without a key must answer 401")
        started = time.monotonic()
        if args.warmup > 0:
            generator.run(served.url, headers, args.warmup)
        result = generator.run(served.url, headers, args.duration)
        if name == STATUS:
            ran = _computations(served.url.removesuffix(STATUS_PATH), headers)
            windows = math.ceil((time.monotonic() - started) / WINDOW_SECONDS) + 1
            if not 1 <= ran <= windows:
                raise RuntimeError(f"{ran:g} status checks ran; at most {windows} expected")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds before each run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto")
    args = parser.parse_args(argv)
    load_before = machine()["loadavg_1m"]
    generator = pick_generator(args.generator, args.connections)
    samples: dict[str, list[LoadResult]] = {BARE: [], STATUS: []}
    with tempfile.TemporaryDirectory(prefix="xynergy-bench-") as tmp:
        workdir = Path(tmp)
        keys = create_bench_keys(workdir / "data")
        for round_number in range(1, args.rounds + 1):
            for name in samples:
                print(f"[round {round_number}/{args.rounds}] {name} ...", file=sys.stderr)
                result = _measure(name, generator, args, workdir, keys)
                print(f"    {result}", file=sys.stderr)
                samples[name].append(result)
    rows = summarize(samples, BARE)
    box = machine()
    header = [
        f"median of {args.rounds} interleaved rounds x {args.duration}s "
        f"(after {args.warmup}s warm-up each)",
        f"machine: nproc={box['nproc']}, Python {box['python']}, {box['platform']}, "
        f"load avg (1 min) {load_before} before / {box['loadavg_1m']} after",
        f"server:  bare: {SERVERS[PLAIN]}; dashboard: {SERVERS[XYNERGY]}",
        f"load:    {generator.description}",
    ]
    print(format_table(rows, header, [STATUS]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
