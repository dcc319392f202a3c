"""AI Routing Engine gateway benchmark (issue 4): what the gateway adds in front of an
upstream, and what a cache hit costs against bare FastAPI.

    .venv/bin/python bench/ai_gateway.py                          # 3 rounds x 10 s
    .venv/bin/python bench/ai_gateway.py --duration 5 --rounds 3 --json

Rows, all ``POST /v1/chat/completions`` (see bench/README.md):

* ``upstream direct``: the fake OpenAI-compatible upstream (bench/fake_upstream.py)
  on its own, at N connections and at 1 connection;
* ``gateway → upstream``: the real gateway (``create_ai_routing_app``, API key auth,
  rate limits, token limit, usage ledger on) in front of a fresh fake upstream, with
  a distinct prompt per request and ``Cache-Control: no-cache, no-store`` (so no
  cache lookup or store and no in-flight merging), at N and at 1 connection;
* ``bare FastAPI POST``: FastAPI alone parsing the same body into
  ``ChatCompletionRequest`` and answering a precomputed body as long as the
  gateway's cached answer;
* ``gateway cache hit``: one fixed body, every request answered from the cache.

Each round starts every row's servers in turn, fresh (so slow drift hits every row
alike); each row is the median over rounds. Traffic goes to 127.0.0.1 only; every
process started is stopped by its PID. Needs ``wrk`` (bodies come from a Lua script).
The three goal lines are informational, never assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Response

# isort: split
# bench's own modules: bench/ is sys.path[0] when run as a script (and uvicorn's
# --app-dir when this module serves the apps below).
from load import LoadResult, parse_wrk
from prepare import platform_env, scrubbed_env
from report import Row, format_table, machine, summarize, to_json
from servers import BENCH_DIR, HOST, UVICORN_FLAGS, _free_port, _stop, _wait_ready
from sqlalchemy.ext.asyncio import async_sessionmaker

from xynergy.ai_routing.app import create_ai_routing_app
from xynergy.ai_routing.openai_compat.schemas import ChatCompletionRequest
from xynergy.platform.config import Settings
from xynergy.platform.db.engine import create_engine_from_settings
from xynergy.platform.db.migrate import upgrade_to_head
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.logging import configure_logging
from xynergy.platform.tenancy.service import create_key, create_tenant

__all__ = ["bare_post_app", "gateway_app", "main"]

SCOPE = "ai:generate"
PROVIDER = "fake"  # the fake upstream's provider name in the bench catalogue
MODEL = "bench-fake"
PATH = "/v1/chat/completions"
# Names the file holding the body bare_post_app answers (the gateway's cached answer).
BODY_ENV = "BENCH_AI_BODY"
UPSTREAM_KEY_ENV = "BENCH_FAKE_UPSTREAM_KEY"
# Far above what one process can spend: the token limit counts but never rejects.
HUGE_TOKENS = "1000000000/minute"
# No word of AiSettings.time_sensitive_patterns: the cached answer gets the stable TTL.
PROMPT = "Suggest keywords for a yoga app"
MAX_TOKENS = 32
FAKE_UPSTREAM = BENCH_DIR / "fake_upstream.py"
NO_CACHE = {"Cache-Control": "no-cache, no-store"}

UP = "upstream direct ({} conn)"
GATEWAY = "gateway → upstream ({} conn; auth, rate limits, ledger; distinct, no-cache)"
BARE = "bare FastAPI POST (same body model, fixed answer)"
CACHE_HIT = "gateway cache hit (auth, rate limits, ledger)"

# Goals of issue 4 (informational).
GOAL_ADDED_P50_MS = 1.0
GOAL_PROXIED_RPS = 2_000.0
GOAL_CACHE_RATIO = 0.50


# --- the apps under test (uvicorn factories: ai_gateway:gateway_app) -----------------


def gateway_app() -> FastAPI:
    """The AI Routing Engine as `xynergy serve` builds it, from ``XYNERGY_*``."""
    settings = Settings()
    configure_logging(settings.log_level)
    return create_ai_routing_app(settings)


def bare_post_app() -> FastAPI:
    """Plain FastAPI: parses the body into the gateway's ``ChatCompletionRequest`` and
    answers the bytes in ``$BENCH_AI_BODY`` (read once). No auth or middleware; it
    ignores the Authorization header. ``GET /healthz`` is only for readiness."""
    body = Path(os.environ[BODY_ENV]).read_bytes()
    app = FastAPI()

    @app.post(PATH)
    async def chat_completions(request: ChatCompletionRequest) -> Response:
        return Response(content=body, media_type="application/json")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


# --- processes -------------------------------------------------------------------------


@contextmanager
def _process(command: list[str], env: dict[str, str], log: Path, ready_url: str) -> Iterator[None]:
    """Run ``command`` until the block ends, once ``GET ready_url`` answers 200."""
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            _wait_ready(process, ready_url, {}, log)
            yield
        finally:
            _stop(process)


@contextmanager
def _upstream(workdir: Path) -> Iterator[str]:
    """A fresh fake upstream; yields its base URL."""
    port = _free_port()
    command = [sys.executable, str(FAKE_UPSTREAM), "--port", str(port)]
    base = f"http://{HOST}:{port}"
    with _process(command, scrubbed_env(), workdir / "upstream.log", f"{base}/health"):
        yield base


@contextmanager
def _uvicorn(factory: str, env: dict[str, str], log: Path) -> Iterator[str]:
    """``ai_gateway:<factory>`` under uvicorn with the flags of bench/run.py; yields its base URL."""
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        f"ai_gateway:{factory}",
        "--factory",
        "--app-dir",
        str(BENCH_DIR),
        "--host",
        HOST,
        "--port",
        str(port),
        *UVICORN_FLAGS,
    ]
    base = f"http://{HOST}:{port}"
    with _process(command, {**scrubbed_env(), **env}, log, f"{base}/healthz"):
        yield base


@dataclass(frozen=True, slots=True)
class Bench:
    """What every measurement shares: the temp dir, the database and the key."""

    workdir: Path
    data_dir: Path
    key: str
    wrk: str
    args: argparse.Namespace

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def gateway_env(self, upstream_base: str) -> dict[str, str]:
        """``XYNERGY_*`` of a gateway whose only model is served by the fake upstream."""
        catalogue = self.workdir / f"catalogue-{upstream_base.rsplit(':', 1)[1]}.json"
        catalogue.write_text(json.dumps(_catalogue(upstream_base)), encoding="utf-8")
        return {
            **platform_env(self.data_dir, access_log=True, redis_url=None),
            "XYNERGY_AI_CATALOGUE": str(catalogue),
            "XYNERGY_AI_TOKENS_PER_MINUTE": HUGE_TOKENS,
            UPSTREAM_KEY_ENV: secrets.token_urlsafe(16),
        }

    @contextmanager
    def gateway(self) -> Iterator[tuple[str, str]]:
        """A fresh fake upstream and a fresh gateway in front of it: (gateway, upstream)."""
        with _upstream(self.workdir) as upstream:
            log = self.workdir / "gateway.log"
            with _uvicorn("gateway_app", self.gateway_env(upstream), log) as base:
                yield base, upstream


def _catalogue(upstream_base: str) -> dict[str, Any]:
    return {
        "providers": [
            {
                "name": PROVIDER,
                "kind": "openai",
                "base_url": f"{upstream_base}/v1",
                "api_key_env": UPSTREAM_KEY_ENV,
            }
        ],
        "models": [
            {
                "name": MODEL,
                "provider": PROVIDER,
                "upstream_model": "fake-chat-1",
                "input_price_per_mtok": "1.000",
                "output_price_per_mtok": "2.000",
                "context_window": 32_000,
                "quality_tier": "standard",
            }
        ],
    }


def _create_key(data_dir: Path) -> str:
    """Migrate ``data_dir``'s database; a tenant with one ``ai:generate`` key."""
    settings = Settings(data_dir=data_dir, database_url=None, redis_url=None)
    upgrade_to_head(settings)

    async def prepare() -> str:
        engine = create_engine_from_settings(settings)
        try:
            async with unit_of_work(async_sessionmaker(engine, expire_on_commit=False)) as session:
                tenant = await create_tenant(session, name="bench-ai")
                # metrics:read: the checks read the gateway's /metrics with this key.
                issued = await create_key(
                    session, tenant_id=tenant.id, name="bench-ai", scopes=[SCOPE, "metrics:read"]
                )
                return issued.secret
        finally:
            await engine.dispose()

    return asyncio.run(prepare())


def _ledger_rows(data_dir: Path) -> int:
    """Rows in the usage ledger (read while no gateway runs)."""
    with sqlite3.connect(data_dir / "xynergy.db") as connection:
        return int(connection.execute("SELECT count(*) FROM ai_usage_events").fetchone()[0])


# --- HTTP checks -----------------------------------------------------------------------


def _body(content: str) -> dict[str, Any]:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": MAX_TOKENS,
    }


FIXED_BODY = json.dumps(_body(PROMPT), separators=(",", ":"))


def _request(
    method: str, url: str, headers: dict[str, str], body: str | None = None
) -> tuple[int, bytes]:
    parts = url.split("/", 3)  # http:, '', host:port, path
    connection = http.client.HTTPConnection(parts[2], timeout=10)
    try:
        sent = {**headers, "Content-Type": "application/json"} if body is not None else headers
        connection.request(method, "/" + parts[3], body=body, headers=sent)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _post(base: str, headers: dict[str, str], body: str = FIXED_BODY) -> tuple[int, bytes]:
    return _request("POST", base + PATH, headers, body)


def _expect_completion(name: str, answer: tuple[int, bytes]) -> dict[str, Any]:
    code, raw = answer
    data = json.loads(raw) if code == 200 else None
    if not isinstance(data, dict) or data.get("object") != "chat.completion":
        raise RuntimeError(f"{name}: POST answered {code}: {raw[:300]!r}")
    return data


def _metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line[len(name) : len(name) + 1] not in ("{", " "):
            continue
        series, _, value = line.rpartition(" ")
        found = dict(re.findall(r'(\w+)="([^"]*)"', series))
        if all(found.get(label) == wanted for label, wanted in labels.items()):
            total += float(value)
    return total


def _metrics(base: str, headers: dict[str, str]) -> str:
    return _request("GET", base + "/metrics", headers)[1].decode()


def _upstream_calls(upstream: str) -> int:
    return int(json.loads(_request("GET", upstream + "/stats", {})[1])["calls"])


# --- load ------------------------------------------------------------------------------


def _lua(headers: dict[str, str], body: str | None) -> str:
    """A wrk script: POST ``body`` every time, or (None) a distinct prompt per request."""
    lines = ['wrk.method = "POST"', 'wrk.headers["Content-Type"] = "application/json"']
    lines += [f"wrk.headers[ {_long(name)} ] = {_long(value)}" for name, value in headers.items()]
    if body is not None:
        lines.append(f"wrk.body = {_long(body)}")
        return "\n".join(lines) + "\n"
    # A fresh run id per script: counters restart, prompts never repeat across runs.
    marker = "\x00"
    prefix, suffix = json.dumps(
        _body(f"{PROMPT}, request {secrets.token_hex(4)}-{marker}"), separators=(",", ":")
    ).split(json.dumps(marker)[1:-1])
    lines += [
        f"local prefix = {_long(prefix)}",
        f"local suffix = {_long(suffix)}",
        "local counter = 0",
        "function request()",
        "  counter = counter + 1",
        f'  return wrk.format("POST", {_long(PATH)}, wrk.headers, prefix .. counter .. suffix)',
        "end",
    ]
    return "\n".join(lines) + "\n"


def _long(text: str) -> str:
    """A Lua long-bracket string literal (no escapes processed)."""
    if "]==]" in text or text.startswith("\n"):
        raise ValueError(f"cannot quote {text!r}")
    return f"[==[{text}]==]"


def _wrk(
    bench: Bench,
    url: str,
    headers: dict[str, str],
    body: str | None,
    connections: int,
    seconds: int,
) -> tuple[LoadResult, int]:
    """``wrk -t1`` for ``seconds``: the result and the number of completed requests."""
    script = bench.workdir / f"load-{secrets.token_hex(4)}.lua"
    script.write_text(_lua(headers, body), encoding="utf-8")
    command = [bench.wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    done = subprocess.run(
        [*command, "-s", str(script), url],
        capture_output=True,
        text=True,
        check=False,
        timeout=seconds + 30,
    )
    # A broken script is only reported on stderr; wrk then sends plain GETs.
    if done.returncode != 0 or done.stderr.strip():
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    total = re.search(r"^\s*(\d+) requests in", done.stdout, re.MULTILINE)
    if total is None:
        raise ValueError(f"no request count in wrk output:\n{done.stdout}")
    return parse_wrk(done.stdout), int(total.group(1))


def _load(
    bench: Bench, url: str, headers: dict[str, str], body: str | None, connections: int
) -> tuple[LoadResult, int]:
    """Warm-up, then the measured run; the result and all requests completed."""
    warm = 0
    if bench.args.warmup > 0:
        warm = _wrk(bench, url, headers, body, connections, bench.args.warmup)[1]
    result, measured = _wrk(bench, url, headers, body, connections, bench.args.duration)
    return result, warm + measured


# --- rows ------------------------------------------------------------------------------


def _measure_upstream(bench: Bench, connections: int) -> LoadResult:
    with _upstream(bench.workdir) as upstream:
        _expect_completion("upstream direct", _post(upstream, {}))
        result, sent = _load(bench, upstream + PATH, {}, None, connections)
        calls = _upstream_calls(upstream)
    if calls < sent + 1:
        raise RuntimeError(f"upstream direct: {calls} calls for {sent + 1} requests")
    return result


def _measure_gateway(bench: Bench, connections: int) -> LoadResult:
    rows_before = _ledger_rows(bench.data_dir)
    headers = {**bench.auth, **NO_CACHE}
    with bench.gateway() as (gateway, upstream):
        anonymous = _post(gateway, NO_CACHE)[0]
        if anonymous != 401:
            raise RuntimeError(f"gateway: POST without a key answered {anonymous}, not 401")
        answer = _expect_completion("gateway", _post(gateway, headers))
        if answer.get("provider") != PROVIDER:
            raise RuntimeError(f"gateway: provider {answer.get('provider')!r}, not {PROVIDER!r}")
        result, sent = _load(bench, gateway + PATH, headers, None, connections)
        calls = _upstream_calls(upstream)
        deduplicated = _metric(
            _metrics(gateway, bench.auth), "xynergy_ai_deduplicated_requests_total"
        )
    # Every request went upstream on its own, and the ledger wrote one row for each.
    if calls < sent + 1 or deduplicated:
        raise RuntimeError(
            f"gateway: {calls} upstream calls, {deduplicated} merged, {sent + 1} sent"
        )
    written = _ledger_rows(bench.data_dir) - rows_before
    if written < sent + 1:
        raise RuntimeError(f"gateway: {written} ledger rows for {sent + 1} requests")
    return result


def _measure_cache_hit(bench: Bench, reference: bytes) -> LoadResult:
    rows_before = _ledger_rows(bench.data_dir)
    with bench.gateway() as (gateway, upstream):
        anonymous = _post(gateway, {})[0]
        if anonymous != 401:
            raise RuntimeError(f"cache hit: POST without a key answered {anonymous}, not 401")
        first = _expect_completion("cache hit", _post(gateway, bench.auth))  # the one miss
        code, raw = _post(gateway, bench.auth)
        second = _expect_completion("cache hit", (code, raw))
        if first.get("provider") != PROVIDER or not second["xynergy"]["cached"]:
            raise RuntimeError(f"cache hit: unexpected answers {first} / {second}")
        if len(raw) != len(reference):
            raise RuntimeError(f"cache hit: {len(raw)} bytes, reference {len(reference)}")
        result, sent = _load(bench, gateway + PATH, bench.auth, FIXED_BODY, bench.args.connections)
        text = _metrics(gateway, bench.auth)
        calls = _upstream_calls(upstream)
    hits = _metric(text, "xynergy_cache_requests_total", namespace="ai", result="hit")
    misses = _metric(text, "xynergy_cache_requests_total", namespace="ai", result="miss")
    upstream_calls = _metric(text, "xynergy_ai_upstream_calls_total")
    if hits < sent + 1 or misses != 1 or upstream_calls != 1 or calls != 1:
        raise RuntimeError(
            f"cache hit: {hits:.0f} hits, {misses:.0f} misses, {upstream_calls:.0f} upstream "
            f"calls (fake counted {calls}) for {sent + 2} requests; expected 1 miss, 1 call"
        )
    written = _ledger_rows(bench.data_dir) - rows_before
    if written < sent + 2:
        raise RuntimeError(f"cache hit: {written} ledger rows for {sent + 2} requests")
    return result


def _measure_bare(bench: Bench, reference: bytes, body_file: Path) -> LoadResult:
    env = {BODY_ENV: str(body_file)}
    with _uvicorn("bare_post_app", env, bench.workdir / "bare.log") as base:
        code, raw = _post(base, bench.auth)
        if code != 200 or len(raw) != len(reference):
            raise RuntimeError(f"bare: answered {code}, {len(raw)} bytes")
        result, _ = _load(bench, base + PATH, bench.auth, FIXED_BODY, bench.args.connections)
    return result


def _reference(bench: Bench) -> bytes:
    """The gateway's cached answer to FIXED_BODY (bare_post_app answers as many bytes)."""
    with bench.gateway() as (gateway, _):
        _expect_completion("reference", _post(gateway, bench.auth))
        code, raw = _post(gateway, bench.auth)
    if not _expect_completion("reference", (code, raw))["xynergy"]["cached"]:
        raise RuntimeError("reference: the second identical request was not a cache hit")
    return raw


# --- running and reporting -------------------------------------------------------------


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="AI gateway vs upstream and bare FastAPI.")
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds before each run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (>= 2)")
    parser.add_argument("--connections", type=int, default=64, help="for the loaded rows")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if args.rounds < 2 or args.duration < 1 or args.warmup < 0 or args.connections < 1:
        parser.error("need --rounds >= 2, --duration >= 1, --warmup >= 0, --connections >= 1")
    return args


def _run_rounds(args: argparse.Namespace, wrk: str) -> tuple[dict[str, list[LoadResult]], int]:
    """Every row once per round, in order; also the size of the cached answer."""
    many = args.connections
    with tempfile.TemporaryDirectory(prefix="xynergy-bench-ai-") as tmp:
        workdir = Path(tmp)
        data_dir = workdir / "data"
        bench = Bench(workdir, data_dir, _create_key(data_dir), wrk, args)
        print("reference cached answer from the gateway ...", file=sys.stderr)
        reference = _reference(bench)
        body_file = workdir / "cached-answer.json"
        body_file.write_bytes(reference)
        print(f"    {len(reference):,} bytes", file=sys.stderr)
        rows = [
            (UP.format(many), lambda: _measure_upstream(bench, many)),
            (UP.format(1), lambda: _measure_upstream(bench, 1)),
            (GATEWAY.format(many), lambda: _measure_gateway(bench, many)),
            (GATEWAY.format(1), lambda: _measure_gateway(bench, 1)),
            (BARE, lambda: _measure_bare(bench, reference, body_file)),
            (CACHE_HIT, lambda: _measure_cache_hit(bench, reference)),
        ]
        samples: dict[str, list[LoadResult]] = {name: [] for name, _ in rows}
        for round_number in range(1, args.rounds + 1):
            for name, measure in rows:
                print(f"[round {round_number}/{args.rounds}] {name} ...", file=sys.stderr)
                result = measure()
                print(f"    {result}", file=sys.stderr)
                samples[name].append(result)
    return samples, len(reference)


def _with_ratios(rows: list[Row], connections: int) -> list[Row]:
    """Each row against its own baseline: the gateway against the upstream at the same
    connections, the cache hit against bare FastAPI POST; baselines are 1.00."""
    by_name = {row.variant: row for row in rows}
    baseline = {
        GATEWAY.format(connections): UP.format(connections),
        GATEWAY.format(1): UP.format(1),
        CACHE_HIT: BARE,
    }
    out = []
    for row in rows:
        base = by_name[baseline.get(row.variant, row.variant)].requests_per_second
        out.append(replace(row, ratio=row.requests_per_second / base if base else 0.0))
    return out


def _goals(rows: list[Row], connections: int) -> dict[str, dict[str, Any]]:
    by_name = {row.variant: row for row in rows}
    added = by_name[GATEWAY.format(1)].p50_ms - by_name[UP.format(1)].p50_ms
    proxied = by_name[GATEWAY.format(connections)].requests_per_second
    bare = by_name[BARE].requests_per_second
    cache_ratio = by_name[CACHE_HIT].requests_per_second / bare if bare else 0.0
    return {
        "added_p50_ms_at_1_connection": {
            "value": added,
            "goal_at_most": GOAL_ADDED_P50_MS,
            "met": added <= GOAL_ADDED_P50_MS,
        },
        f"proxied_rps_at_{connections}_connections": {
            "value": proxied,
            "goal_at_least": GOAL_PROXIED_RPS,
            "met": proxied >= GOAL_PROXIED_RPS,
        },
        "cache_hit_share_of_bare_post": {
            "value": cache_ratio,
            "goal_at_least": GOAL_CACHE_RATIO,
            "met": cache_ratio >= GOAL_CACHE_RATIO,
        },
    }


def _goal_lines(rows: list[Row], goals: dict[str, dict[str, Any]], connections: int) -> list[str]:
    by_name = {row.variant: row for row in rows}

    def verdict(goal: dict[str, Any]) -> str:
        return ("met" if goal["met"] else "NOT met") + "; informational, never an assertion"

    added, proxied, cache = goals.values()
    return [
        f"goal: added p50 at 1 connection <= {GOAL_ADDED_P50_MS:g} ms -> "
        f"{added['value']:.2f} ms (gateway {by_name[GATEWAY.format(1)].p50_ms:.2f} - "
        f"upstream {by_name[UP.format(1)].p50_ms:.2f}) ({verdict(added)})",
        f"goal: proxied req/s at {connections} connections >= {GOAL_PROXIED_RPS:,.0f} -> "
        f"{proxied['value']:,.0f} ({verdict(proxied)})",
        f"goal: cache hit >= {GOAL_CACHE_RATIO:.0%} of bare FastAPI POST req/s -> "
        f"{cache['value']:.1%} ({verdict(cache)})",
    ]


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not on PATH (apt-get install wrk): POST bodies need its Lua")
    load_before = machine()["loadavg_1m"]
    samples, body_bytes = _run_rounds(args, wrk)
    rows = _with_ratios(summarize(samples, BARE), args.connections)
    goals = _goals(rows, args.connections)
    box = {**machine(), "loadavg_1m_before": load_before}
    server = "uvicorn " + " ".join(UVICORN_FLAGS)
    upstream = "bench/fake_upstream.py (raw asyncio + httptools on uvloop, one process)"
    if args.json:
        meta = {
            "machine": box,
            "generator": f"wrk ({wrk}), 1 thread, Lua POST script",
            "server": server,
            "upstream": upstream,
            "duration_seconds": args.duration,
            "warmup_seconds": args.warmup,
            "rounds": args.rounds,
            "cached_answer_bytes": body_bytes,
            "goals": goals,
        }
        document = to_json(rows, meta)
        document.pop("goal_ratio", None)  # bench/run.py's goal, not this one's
        print(json.dumps(document, indent=2, ensure_ascii=False))
        return 0
    header = [
        f"POST {PATH}: median of {args.rounds} interleaved rounds x {args.duration}s "
        f"(after {args.warmup}s warm-up each)",
        f"machine: nproc={box['nproc']}, Python {box['python']}, {box['platform']}, "
        f"load avg (1 min) {load_before} before / {box['loadavg_1m']} after",
        f"server:  {server} (gateway and bare FastAPI)",
        f"upstream: {upstream}",
        f"load:    wrk ({wrk}), 1 thread, {args.connections} or 1 connections, bodies from Lua",
        "ratio:   gateway rows / upstream direct at the same connections; cache hit / bare "
        f"FastAPI POST ({body_bytes:,}-byte answer each); baselines 1.00",
    ]
    print(format_table(rows, header, []))
    print("\n".join(_goal_lines(rows, goals, args.connections)))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        # Servers and load generators are already stopped by the context managers.
        print("interrupted", file=sys.stderr)
        sys.exit(130)
