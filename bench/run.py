"""Platform overhead benchmark: bare FastAPI vs the full platform stack, same server,
plus the ASO Engine's cached trending keywords (issue 3, bench (a)) against the same
bare ``/ping`` baseline and against a like-for-like bare FastAPI trending endpoint
(same path, query parameters and body bytes; the goal is judged against that one).

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
import statistics
import sys
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import redis

# isort: split
# bench's own modules: bench/ is sys.path[0] when run as a script.
from apps import TRENDING_BODY_ENV
from load import LoadGenerator, LoadResult, pick_generator
from prepare import BenchKeys, create_bench_keys, platform_env, scrubbed_env
from report import GOAL_RATIO, Row, format_table, machine, summarize, to_json
from servers import PLAIN, SERVERS, XYNERGY, serve, status

BARE = "bare FastAPI"
PLATFORM = "platform (SQLite keys, memory limiter, access log on)"
# The same app on plain uvicorn: what xynergy serve's limits cost (issue 10), same run.
PLATFORM_PLAIN = "platform (same, on plain uvicorn: no server limits)"
# The server limits may cost at most this share of PLATFORM_PLAIN's req/s.
SERVER_LIMITS_BUDGET = 0.05
TRENDING = "ASO trending (cached, memory cache, access log on)"
# The like-for-like baseline of TRENDING: FastAPI alone, same request, same body.
BARE_TRENDING = "bare FastAPI, same trending JSON"
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
    # Whether ``path``'s body must equal the real trending body, byte for byte.
    trending_body: bool = False
    # servers.PLAIN (uvicorn with UVICORN_FLAGS) or servers.XYNERGY (what ships).
    server: str = XYNERGY


@dataclass(frozen=True, slots=True)
class Reference:
    """The real ASO Engine's trending response, fetched once before the rounds."""

    body: bytes
    content_type: str
    file: Path  # the same bytes, for bare_trending_app to read at start-up


def _variants(
    data_dir: Path, redis_url: str | None, keys: BenchKeys, body_file: Path
) -> list[Variant]:
    def env(access_log: bool, limiter_redis: str | None = None) -> dict[str, str]:
        return platform_env(data_dir, access_log=access_log, redis_url=limiter_redis)

    ping = {"Authorization": f"Bearer {keys.ping}"}
    trending = {"Authorization": f"Bearer {keys.trending}"}
    variants = [
        Variant(BARE, "bare_app", ping, anonymous_status=200, server=PLAIN),
        # Sent the trending key too, which it ignores, like bare_app the ping key.
        Variant(
            BARE_TRENDING,
            "bare_trending_app",
            trending,
            {TRENDING_BODY_ENV: str(body_file)},
            path=TRENDING_PATH,
            anonymous_status=200,
            trending_body=True,
            server=PLAIN,
        ),
        Variant(PLATFORM, "platform_app", ping, env(access_log=True)),
        Variant(PLATFORM_PLAIN, "platform_app", ping, env(access_log=True), server=PLAIN),
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
            trending_body=True,
        )
    )
    return variants


def _reference(data_dir: Path, keys: BenchKeys, workdir: Path) -> Reference:
    """Start the real ASO Engine once, as its row does, and keep its trending body."""
    headers = {"Authorization": f"Bearer {keys.trending}"}
    env = {**scrubbed_env(), **platform_env(data_dir, access_log=True, redis_url=None)}
    log = workdir / "reference.log"
    with serve("aso_app", env, log, headers, TRENDING_PATH, XYNERGY) as served:
        code, content_type, body = _fetch(served.url, headers)
    if code != 200 or not body:
        raise RuntimeError(f"reference GET {TRENDING_PATH} answered {code} ({len(body)} bytes)")
    file = workdir / "trending.json"
    file.write_bytes(body)
    return Reference(body=body, content_type=content_type, file=file)


def _check_body(variant: Variant, url: str, reference: Reference) -> None:
    """Fail the row unless it answers exactly the reference body and content type."""
    code, content_type, body = _fetch(url, variant.headers)
    if code != 200 or body != reference.body or content_type != reference.content_type:
        raise RuntimeError(
            f"{variant.name}: body differs from the ASO Engine's ({code}, {content_type!r}, "
            f"{len(body)} bytes vs {reference.content_type!r}, {len(reference.body)} bytes)"
        )


def _measure(
    variant: Variant,
    generator: LoadGenerator,
    args: argparse.Namespace,
    workdir: Path,
    reference: Reference,
) -> tuple[LoadResult, float]:
    """The load result, and the server's CPU time per request during it (µs): a
    figure that CPU contention from other processes barely moves, unlike req/s."""
    env = {**scrubbed_env(), **variant.env}
    log = workdir / f"{variant.factory}.log"
    headers = variant.headers
    with serve(variant.factory, env, log, headers, variant.path, variant.server) as served:
        url = served.url
        anonymous = status(url, {})
        if anonymous != variant.anonymous_status:
            raise RuntimeError(f"{variant.name}: anonymous GET answered {anonymous}")
        if variant.trending_body:
            # On the ASO row a cache hit: readiness computed and cached the list.
            _check_body(variant, url, reference)
        if args.warmup > 0:
            generator.run(url, headers, args.warmup)
        cpu_before = served.cpu_seconds()
        result = generator.run(url, headers, args.duration)
        cpu = served.cpu_seconds() - cpu_before
        if variant.cache_namespace:
            misses = _cache_misses(url, headers, variant.cache_namespace)
            if misses != 1:
                raise RuntimeError(f"{variant.name}: {misses} cache misses, expected 1")
        requests = result.requests_per_second * args.duration
        return result, (cpu / requests * 1e6 if requests else 0.0)


def _fetch(url: str, headers: dict[str, str]) -> tuple[int, str, bytes]:
    """``GET url``: status, Content-Type and body."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=5)
    try:
        target = f"{parts.path}?{parts.query}" if parts.query else parts.path
        connection.request("GET", target, headers=headers)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


def _cache_misses(url: str, headers: dict[str, str], namespace: str) -> float:
    """The server's cache miss counter for ``namespace``, read from its /metrics."""
    parts = urllib.parse.urlsplit(url)
    text = _fetch(f"http://{parts.netloc}/metrics", headers)[2].decode()
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


@dataclass
class Samples:
    """Per variant, one entry per round: the load results and server CPU µs/request."""

    results: dict[str, list[LoadResult]] = field(default_factory=dict)
    cpu_us: dict[str, list[float]] = field(default_factory=dict)
    body_bytes: int = 0  # the size of the trending body both trending rows served


def _run_rounds(args: argparse.Namespace, generator: LoadGenerator) -> Samples:
    """Every variant once per round, in order; the temp data dir lives only this long."""
    with tempfile.TemporaryDirectory(prefix="xynergy-bench-") as tmp:
        workdir = Path(tmp)
        data_dir = workdir / "data"
        keys = create_bench_keys(data_dir)
        print("reference trending body from the ASO Engine ...", file=sys.stderr)
        reference = _reference(data_dir, keys, workdir)
        print(f"    {len(reference.body):,} bytes", file=sys.stderr)
        variants = _variants(data_dir, args.redis, keys, reference.file)
        samples = Samples(
            results={v.name: [] for v in variants},
            cpu_us={v.name: [] for v in variants},
            body_bytes=len(reference.body),
        )
        try:
            for round_number in range(1, args.rounds + 1):
                for variant in variants:
                    # Progress on stderr keeps stdout clean for --json.
                    print(
                        f"[round {round_number}/{args.rounds}] {variant.name} ...", file=sys.stderr
                    )
                    result, cpu_us = _measure(variant, generator, args, workdir, reference)
                    print(f"    {result}, server CPU {cpu_us:.1f} µs/request", file=sys.stderr)
                    samples.results[variant.name].append(result)
                    samples.cpu_us[variant.name].append(cpu_us)
        finally:
            if args.redis:
                _forget_redis_counters(args.redis, variants)
    return samples


def _like_for_like(rows: list[Row], body_bytes: int) -> dict[str, float | int | bool | str]:
    """The trending row against both baselines; the goal uses the like-for-like one."""
    by_name = {row.variant: row for row in rows}
    trending, baseline = by_name[TRENDING], by_name[BARE_TRENDING]
    ratio = (
        trending.requests_per_second / baseline.requests_per_second
        if baseline.requests_per_second
        else 0.0
    )
    return {
        "variant": TRENDING,
        "baseline": BARE_TRENDING,
        "body_bytes": body_bytes,
        "ratio_vs_bare_ping": trending.ratio,
        "ratio_vs_like_for_like": ratio,
        "goal_met": ratio >= GOAL_RATIO,
    }


def _like_for_like_lines(result: dict[str, float | int | bool | str]) -> list[str]:
    ratio = float(result["ratio_vs_like_for_like"])
    verdict = "met" if result["goal_met"] else "NOT met"
    return [
        f"goal: {TRENDING!r} >= {GOAL_RATIO:.0%} of {BARE_TRENDING!r} req/s -> "
        f"{ratio:.1%} ({verdict}; informational, never an assertion)",
        f"      {TRENDING!r}: {float(result['ratio_vs_bare_ping']):.2f} of bare /ping, "
        f"{ratio:.2f} of {BARE_TRENDING!r}",
        f"why:  {BARE_TRENDING!r} is FastAPI alone serving the same GET {TRENDING_PATH} "
        f"with the same five query parameters and the same {int(result['body_bytes']):,}-byte "
        "body (checked byte-identical every round); no auth, cache, rate limit or middleware.",
        "      So this goal measures what the platform and its cache add, not query-parameter "
        "parsing or the body size, which bare /ping does not pay.",
    ]


def _server_limits(rows: list[Row], cpu_us: dict[str, list[float]]) -> dict[str, float | bool]:
    """What xynergy serve's server costs: PLATFORM against PLATFORM_PLAIN, same app.

    Also the median of per-round ratios (the two rows run back to back in every
    round, so pairing them cancels most drift of a shared machine), and the
    server's CPU time per request of each, which other processes barely move."""
    by_name = {row.variant: row for row in rows}
    limited, plain = by_name[PLATFORM], by_name[PLATFORM_PLAIN]
    paired = [
        a.requests_per_second / b.requests_per_second
        for a, b in zip(limited.rounds, plain.rounds, strict=True)
        if b.requests_per_second
    ]
    ratio = (
        limited.requests_per_second / plain.requests_per_second
        if plain.requests_per_second
        else 0.0
    )
    paired_ratio = statistics.median(paired) if paired else 0.0
    limited_cpu = statistics.median(cpu_us[PLATFORM])
    plain_cpu = statistics.median(cpu_us[PLATFORM_PLAIN])
    return {
        "ratio": ratio,
        "paired_ratio": paired_ratio,
        "cpu_us_per_request": limited_cpu,
        "plain_cpu_us_per_request": plain_cpu,
        "within_budget": min(ratio, paired_ratio) >= 1 - SERVER_LIMITS_BUDGET,
    }


def _server_limits_line(result: dict[str, float | bool]) -> str:
    verdict = "met" if result["within_budget"] else "NOT met"
    limited_cpu = float(result["cpu_us_per_request"])
    plain_cpu = float(result["plain_cpu_us_per_request"])
    return (
        f"limits: {PLATFORM!r} / {PLATFORM_PLAIN!r} req/s = {float(result['ratio']):.3f} "
        f"(median of per-round ratios {float(result['paired_ratio']):.3f}); budget >= "
        f"{1 - SERVER_LIMITS_BUDGET:.2f} ({verdict}; informational, never an assertion)\n"
        f"        server CPU per request (median): {limited_cpu:.1f} µs with the limits, "
        f"{plain_cpu:.1f} µs on plain uvicorn ({limited_cpu / plain_cpu - 1:+.1%})"
    )


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    load_before = machine()["loadavg_1m"]
    generator = pick_generator(args.generator, args.connections)
    if args.redis:
        _check_redis(args.redis)
    samples = _run_rounds(args, generator)
    rows = summarize(samples.results, BARE)
    trending = _like_for_like(rows, samples.body_bytes)
    limits = _server_limits(rows, samples.cpu_us)
    box = {**machine(), "loadavg_1m_before": load_before}
    server = {
        "bare rows and " + repr(PLATFORM_PLAIN): SERVERS[PLAIN],
        "other rows": SERVERS[XYNERGY],
    }
    if args.json:
        meta = {
            "machine": box,
            "generator": generator.description,
            "server": server,
            "duration_seconds": args.duration,
            "warmup_seconds": args.warmup,
            "rounds": args.rounds,
            "trending_goal": trending,
            "server_limits": limits,
        }
        print(json.dumps(to_json(rows, meta), indent=2))
        return 0
    header = [
        f"GET /ping (trending rows: GET {TRENDING_PATH}): median of {args.rounds} interleaved "
        f"rounds x {args.duration}s (after {args.warmup}s warm-up each)",
        f"machine: nproc={box['nproc']}, Python {box['python']}, {box['platform']}, "
        f"load avg (1 min) {load_before} before / {box['loadavg_1m']} after",
        *(f"server:  {rows_}: {description}" for rows_, description in server.items()),
        f"load:    {generator.description}",
    ]
    print(format_table(rows, header, [PLATFORM]))
    print("\n".join(_like_for_like_lines(trending)))
    print(_server_limits_line(limits))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        # Servers and generators are already stopped by the context managers.
        print("interrupted", file=sys.stderr)
        sys.exit(130)
