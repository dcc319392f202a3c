"""Platform overhead benchmark: bare FastAPI vs the full platform stack, same server,
plus the ASO Engine's cached trending keywords (issue 3, bench (a)) against the same
bare ``/ping`` baseline.

    make bench                      # or: .venv/bin/python bench/run.py
    .venv/bin/python bench/run.py --duration 5 --rounds 2 --json
    .venv/bin/python bench/run.py --redis redis://127.0.0.1:6379/15

Each round starts every variant's server in turn (bare, platform, ... then again),
so slow drift of the machine hits all variants alike; each row is the median over
rounds. Traffic goes to 127.0.0.1 only; every process started is stopped by PID.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import redis

# isort: split
# bench's own modules: bench/ is sys.path[0] when run as a script.
from load import LoadGenerator, LoadResult, pick_generator
from prepare import BenchKeys, create_bench_keys, platform_env, scrubbed_env
from report import format_table, machine, summarize, to_json
from servers import UVICORN_FLAGS, serve, status

BARE = "bare FastAPI"
PLATFORM = "platform (SQLite keys, memory limiter, access log on)"
TRENDING = "ASO trending (cached, memory cache, access log on)"
PING_PATH = "/ping"
# The window must be one of AsoSettings.trending_windows_days (7, 30).
TRENDING_PATH = "/api/keywords/trending?window=7"


@dataclass(frozen=True, slots=True)
class Variant:
    """One server configuration under test."""

    name: str
    factory: str
    # Sent with every request (readiness check, warm-up and load).
    headers: dict[str, str]
    env: dict[str, str] = field(default_factory=dict)
    # Path and query that is loaded; readiness wants 200 on it with ``headers``.
    path: str = PING_PATH
    # What ``path`` without a key must answer: proves auth really runs (a fast 401
    # would otherwise pass for a fast platform).
    anonymous_status: int = 401
    # A cache namespace whose misses must stay at one (the readiness request) over
    # warm-up and load: proves the measured requests were all cache hits.
    cache_namespace: str | None = None


def _variants(data_dir: Path, redis_url: str | None, keys: BenchKeys) -> list[Variant]:
    def env(access_log: bool, limiter_redis: str | None = None) -> dict[str, str]:
        return platform_env(data_dir, access_log=access_log, redis_url=limiter_redis)

    ping = {"Authorization": f"Bearer {keys.ping}"}
    trending = {"Authorization": f"Bearer {keys.trending}"}
    variants = [
        Variant(BARE, "bare_app", ping, anonymous_status=200),
        Variant(PLATFORM, "platform_app", ping, env(access_log=True)),
        Variant(
            "platform (SQLite keys, memory limiter, access log off)",
            "platform_app",
            ping,
            env(False),
        ),
    ]
    if redis_url:
        name = "platform (SQLite keys, Redis limiter, access log on)"
        variants.append(Variant(name, "platform_app", ping, env(True, redis_url)))
    # No XYNERGY_REDIS_URL: the cache is in-process (cashews memory backend). The
    # readiness request computes and caches the list; warm-up and load are hits.
    variants.append(
        Variant(
            TRENDING,
            "aso_app",
            trending,
            env(True),
            path=TRENDING_PATH,
            cache_namespace="trending",
        )
    )
    return variants


def _measure(
    variant: Variant, generator: LoadGenerator, args: argparse.Namespace, workdir: Path
) -> LoadResult:
    env = {**scrubbed_env(), **variant.env}
    log = workdir / f"{variant.factory}.log"
    headers = variant.headers
    with serve(variant.factory, env, log, headers, variant.path) as url:
        anonymous = status(url, {})
        if anonymous != variant.anonymous_status:
            raise RuntimeError(f"{variant.name}: anonymous GET answered {anonymous}")
        if args.warmup > 0:
            generator.run(url, headers, args.warmup)
        result = generator.run(url, headers, args.duration)
        if variant.cache_namespace:
            misses = _cache_misses(url, headers, variant.cache_namespace)
            if misses != 1:
                raise RuntimeError(f"{variant.name}: {misses} cache misses, expected 1")
        return result


def _cache_misses(url: str, headers: dict[str, str], namespace: str) -> float:
    """The server's cache miss counter for ``namespace``, read from its /metrics."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=5)
    try:
        connection.request("GET", "/metrics", headers=headers)
        text = connection.getresponse().read().decode()
    finally:
        connection.close()
    series = f'xynergy_cache_requests_total{{namespace="{namespace}",result="miss"}} '
    for line in text.splitlines():
        if line.startswith(series):
            return float(line.removeprefix(series))
    return 0.0


def _check_redis(url: str) -> None:
    try:
        redis.Redis.from_url(url, socket_timeout=2).ping()
    except redis.RedisError as exc:
        raise SystemExit(f"--redis {url}: not reachable ({exc})") from exc


def _forget_redis_counters(url: str, variants: list[Variant]) -> None:
    """Delete the counters this run left (they would expire within the hour anyway)."""
    client = redis.Redis.from_url(url, socket_timeout=2)
    for variant in variants:
        prefix = variant.env.get("XYNERGY_REDIS_KEY_PREFIX")
        if prefix:
            for key in client.scan_iter(match=prefix + "*"):
                client.delete(key)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Platform vs bare FastAPI: req/s, p50, p99.")
    # Whole seconds: wrk takes no fractions.
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds before each run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (>= 2)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--redis", metavar="URL", help="add a Redis-limiter row")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if args.rounds < 2 or args.duration < 1 or args.warmup < 0 or args.connections < 1:
        parser.error("need --rounds >= 2, --duration >= 1, --warmup >= 0, --connections >= 1")
    return args


def _run_rounds(args: argparse.Namespace, generator: LoadGenerator) -> dict[str, list[LoadResult]]:
    """Every variant once per round, in order; the temp data dir lives only this long."""
    with tempfile.TemporaryDirectory(prefix="xynergy-bench-") as tmp:
        workdir = Path(tmp)
        data_dir = workdir / "data"
        variants = _variants(data_dir, args.redis, create_bench_keys(data_dir))
        samples: dict[str, list[LoadResult]] = {v.name: [] for v in variants}
        try:
            for round_number in range(1, args.rounds + 1):
                for variant in variants:
                    # Progress on stderr keeps stdout clean for --json.
                    print(
                        f"[round {round_number}/{args.rounds}] {variant.name} ...", file=sys.stderr
                    )
                    result = _measure(variant, generator, args, workdir)
                    print(f"    {result}", file=sys.stderr)
                    samples[variant.name].append(result)
        finally:
            if args.redis:
                _forget_redis_counters(args.redis, variants)
    return samples


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    load_before = machine()["loadavg_1m"]
    generator = pick_generator(args.generator, args.connections)
    if args.redis:
        _check_redis(args.redis)
    rows = summarize(_run_rounds(args, generator), BARE)
    box = {**machine(), "loadavg_1m_before": load_before}
    server = "uvicorn " + " ".join(UVICORN_FLAGS)
    if args.json:
        meta = {
            "machine": box,
            "generator": generator.description,
            "server": server,
            "duration_seconds": args.duration,
            "warmup_seconds": args.warmup,
            "rounds": args.rounds,
        }
        print(json.dumps(to_json(rows, meta), indent=2))
        return 0
    header = [
        f"GET /ping (ASO row: GET {TRENDING_PATH}): median of {args.rounds} interleaved "
        f"rounds x {args.duration}s (after {args.warmup}s warm-up each)",
        f"machine: nproc={box['nproc']}, Python {box['python']}, {box['platform']}, "
        f"load avg (1 min) {load_before} before / {box['loadavg_1m']} after",
        f"server:  {server} (the same for every row)",
        f"load:    {generator.description}",
    ]
    print(format_table(rows, header, [PLATFORM, TRENDING]))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        # Servers and generators are already stopped by the context managers.
        print("interrupted", file=sys.stderr)
        sys.exit(130)
