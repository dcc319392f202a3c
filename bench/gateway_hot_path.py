"""The AI gateway's hot path (issue 15, item 8): the real all-in-one ``xynergy serve``
with every feature on, against a minimal proxy on the same server, in the same run.

    .venv/bin/python bench/gateway_hot_path.py                       # 3 rounds x 10 s
    .venv/bin/python bench/gateway_hot_path.py --duration 5 --servers  # + workers, granian
    .venv/bin/python bench/gateway_hot_path.py --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test

Processes, all on 127.0.0.1, each started fresh per measurement and stopped by PID:

* **upstream**: a FastAPI fake of the OpenAI chat completions protocol (the body is
  parsed as JSON, the last user message echoed, tokens counted as words, no sleep)
  under plain uvicorn, one process: realistic, not the fastest possible upstream;
* **minimal proxy**: FastAPI with one route that reads the body, POSTs it upstream
  on one reused aiohttp session and returns the upstream's JSON; served by
  ``xynergy.platform.serving.run`` (the server and flags ``xynergy serve`` uses);
* **gateway**: ``xynergy serve`` itself (all-in-one: every service mounted), a
  catalogue whose one provider is the fake upstream, and every feature on: API key
  auth and scope, the ``ai_generate`` rate limit, the per-key token limit, a tenant
  budget (reserved and settled per request), the usage ledger, the response cache
  and in-flight dedup. The load is **miss-only**: every prompt is distinct, so each
  request pays the cache lookup and store and the dedup bookkeeping, and goes
  upstream (the cache cannot hide the proxy's cost).

Load: ``wrk -t1`` with a Lua script (POST body with a counter, Authorization header),
64 connections by default. Rows are medians over interleaved rounds; **ratio** is
req/s against the minimal proxy of the same run (goal: gateway >= 0.80).

``--servers`` adds the all-in-one app under other servers (the factory
``gateway_hot_path:all_in_one_app``): plain uvicorn with ``--workers 1`` and ``2``, and
granian (``pip install -e '.[granian]'``) with 1 and 2 workers when it is installed.
Checks (the run fails otherwise): the gateway answers 401 without a key; after a
gateway run the upstream counted a call per request, nothing was merged in flight,
and (SQLite) the ledger gained a row per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

# isort: split
# bench's own modules: bench/ is sys.path[0] when run as a script (and uvicorn's
# --app-dir when this module serves the apps below).
from ai_gateway import (
    HUGE_TOKENS,
    PROMPT,
    PROVIDER,
    SCOPE,
    UPSTREAM_KEY_ENV,
    _body,
    _catalogue,
    _long,
    _metric,
    _metrics,
    _request,
    _upstream_calls,
)
from load import LoadResult, parse_wrk
from prepare import platform_env, scrubbed_env
from report import format_table, machine, summarize, to_json
from servers import BENCH_DIR, HOST, UVICORN_FLAGS, _free_port, _stop, _wait_ready
from sqlalchemy.ext.asyncio import async_sessionmaker

from xynergy.platform.config import Settings

__all__ = ["all_in_one_app", "main", "minimal_proxy_app", "upstream_app"]

GATEWAY_PATH = "/ai-routing-engine/v1/chat/completions"
UPSTREAM_PATH = "/v1/chat/completions"
UPSTREAM_ENV = "BENCH_HOT_PATH_UPSTREAM"  # the minimal proxy's upstream base URL
BUDGET_USD = Decimal("1000000")  # far above what a run spends: reserved, never refused
GOAL_RATIO = 0.80
NO_BUDGET_ENV = "BENCH_HOT_PATH_NO_BUDGET"  # --no-budget: the tenant gets no budget

MINIMAL = "minimal proxy (xynergy server, aiohttp, nothing else)"
GATEWAY = "gateway: xynergy serve all-in-one (every feature on, miss-only)"
BEFORE = "gateway, before: the same on the --compare tree"
SERVER_ROWS = {
    "uvicorn-1": "all-in-one on plain uvicorn --workers 1",
    "uvicorn-2": "all-in-one on plain uvicorn --workers 2",
    "granian-1": "all-in-one on granian --workers 1",
    "granian-2": "all-in-one on granian --workers 2",
}


# --- the apps (uvicorn/granian factories: gateway_hot_path:<name>) -----------------------


def upstream_app() -> FastAPI:
    """A FastAPI fake of OpenAI's chat completions: JSON in, an echo with usage out."""
    app = FastAPI()
    calls = [0]

    @app.post(UPSTREAM_PATH)
    async def chat_completions(request: Request) -> JSONResponse:
        body = await request.json()
        calls[0] += 1
        messages = body["messages"]
        last = next(m["content"] for m in reversed(messages) if m.get("role") == "user")
        words = f"echo: {last}".split()[: body.get("max_tokens") or 1_000_000]
        prompt_tokens = sum(max(1, len(str(m.get("content", "")).split())) for m in messages)
        return JSONResponse(
            {
                "id": f"chatcmpl-{calls[0]}",
                "object": "chat.completion",
                "created": 1_764_115_200,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": " ".join(words)},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": len(words),
                    "total_tokens": prompt_tokens + len(words),
                },
            }
        )

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/stats")
    async def stats() -> dict[str, int]:
        return {"calls": calls[0]}

    return app


def minimal_proxy_app() -> FastAPI:
    """One route: the body POSTed upstream on a reused aiohttp session, its JSON back."""
    target = os.environ[UPSTREAM_ENV] + UPSTREAM_PATH
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {os.environ[UPSTREAM_KEY_ENV]}",
    }
    sessions: list[aiohttp.ClientSession] = []

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            sessions.append(session)
            yield

    app = FastAPI(lifespan=lifespan)

    @app.post(GATEWAY_PATH)
    async def proxy(request: Request) -> Response:
        body = await request.body()
        async with sessions[0].post(target, data=body, headers=headers) as answer:
            payload = await answer.read()
            status = answer.status
        return Response(payload, status_code=status, media_type="application/json")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def all_in_one_app() -> Any:
    """What ``xynergy serve`` serves, from ``XYNERGY_*``, for other servers."""
    from xynergy.platform.logging import configure_logging
    from xynergy.server import build_all_in_one

    settings = Settings()
    configure_logging(settings.log_level)
    return build_all_in_one(settings)


def _serve_minimal(port: int) -> None:
    """The minimal proxy on ``xynergy serve``'s server (``--serve-minimal PORT``)."""
    from xynergy.platform import serving

    serving.run(minimal_proxy_app(), Settings(), host=HOST, port=port)


# --- processes -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bench:
    """What every measurement shares: temp dir, database, key, load settings."""

    workdir: Path
    env: dict[str, str]  # XYNERGY_* of the gateway (database, limits, logs)
    key: str
    wrk: str
    args: argparse.Namespace
    sqlite: Path | None  # the database file when on SQLite (ledger checks)
    before_src: Path | None = None  # --compare-src/--compare-ref: an older src tree

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def _uvicorn_command(factory: str, port: int, workers: int = 1) -> list[str]:
    flags = list(UVICORN_FLAGS)
    flags[flags.index("--workers") + 1] = str(workers)
    return [
        sys.executable,
        "-m",
        "uvicorn",
        f"gateway_hot_path:{factory}",
        "--factory",
        "--app-dir",
        str(BENCH_DIR),
        "--host",
        HOST,
        "--port",
        str(port),
        *flags,
    ]


def _granian_command(port: int, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--loop",
        "uvloop",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
        "--working-dir",
        str(BENCH_DIR),
        "--factory",
        "gateway_hot_path:all_in_one_app",
    ]


@contextmanager
def _process(command: list[str], env: dict[str, str], log: Path, ready_url: str) -> Iterator[int]:
    """Run ``command`` until the block ends, once ``GET ready_url`` answers 200; its PID."""
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            _wait_ready(process, ready_url, {}, log)
            yield process.pid
        finally:
            _stop(process)


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU of ``pid`` and its descendants (server workers) so far."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:  # exited meanwhile
            continue
        # utime and stime are fields 14 and 15 of stat(5); fields[0] here is field 3.
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        pending.extend(int(child) for child in children)
    return total


@contextmanager
def _upstream(bench: Bench) -> Iterator[str]:
    port = _free_port()
    base = f"http://{HOST}:{port}"
    command = _uvicorn_command("upstream_app", port)
    with _process(command, scrubbed_env(), bench.workdir / "upstream.log", f"{base}/health"):
        yield base


def _gateway_command(server: str, port: int) -> list[str]:
    if server == "xynergy":
        xynergy = str(Path(sys.executable).with_name("xynergy"))
        return [xynergy, "serve", "--host", HOST, "--port", str(port)]
    name, workers = server.split("-")
    if name == "granian":
        return _granian_command(port, int(workers))
    return _uvicorn_command("all_in_one_app", port, int(workers))


@contextmanager
def _gateway(bench: Bench, server: str, src: Path | None = None) -> Iterator[tuple[str, str, int]]:
    """A fresh upstream and a fresh gateway in front of it: (gateway, upstream, PID).
    ``src``: serve the xynergy package of that tree instead (before/after)."""
    with _upstream(bench) as upstream:
        catalogue = bench.workdir / f"catalogue-{secrets.token_hex(4)}.json"
        catalogue.write_text(json.dumps(_catalogue(upstream)), encoding="utf-8")
        env = {**scrubbed_env(), **bench.env, "XYNERGY_AI_CATALOGUE": str(catalogue)}
        if src is not None:
            # Ahead of the editable install's path entry: that tree's package is imported.
            env["PYTHONPATH"] = str(src)
        port = _free_port()
        base = f"http://{HOST}:{port}"
        log = bench.workdir / f"gateway-{server}.log"
        with _process(_gateway_command(server, port), env, log, f"{base}/healthz") as pid:
            yield base, upstream, pid


@contextmanager
def _minimal(bench: Bench) -> Iterator[tuple[str, str, int]]:
    with _upstream(bench) as upstream:
        env = {
            **scrubbed_env(),
            **bench.env,
            UPSTREAM_ENV: upstream,
            UPSTREAM_KEY_ENV: bench.env[UPSTREAM_KEY_ENV],
        }
        port = _free_port()
        base = f"http://{HOST}:{port}"
        command = [sys.executable, str(Path(__file__).resolve()), "--serve-minimal", str(port)]
        with _process(command, env, bench.workdir / "minimal.log", f"{base}/healthz") as pid:
            yield base, upstream, pid


# --- preparing the database ----------------------------------------------------------


def _prepare(env: dict[str, str]) -> str:
    """``xynergy migrate``, then a tenant, its ``ai:generate`` key and a tenant budget."""
    xynergy = str(Path(sys.executable).with_name("xynergy"))
    done = subprocess.run(
        [xynergy, "migrate"],
        env={**scrubbed_env(), **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"xynergy migrate failed:\n{done.stdout}\n{done.stderr}")
    return asyncio.run(_create_key_and_budget(env))


async def _create_key_and_budget(env: dict[str, str]) -> str:
    from xynergy.ai_routing.usage.repository import BudgetRepository
    from xynergy.platform.db.engine import create_engine_from_settings
    from xynergy.platform.db.session import unit_of_work
    from xynergy.platform.tenancy.service import create_key, create_tenant

    settings = Settings(
        data_dir=Path(env["XYNERGY_DATA_DIR"]),
        database_url=env.get("XYNERGY_DATABASE_URL"),
        redis_url=None,
    )
    engine = create_engine_from_settings(settings)
    try:
        async with unit_of_work(async_sessionmaker(engine, expire_on_commit=False)) as session:
            tenant = await create_tenant(session, name="bench-hot-path")
            issued = await create_key(
                session, tenant_id=tenant.id, name="bench", scopes=[SCOPE, "metrics:read"]
            )
            if env.get(NO_BUDGET_ENV):
                return issued.secret
            await BudgetRepository(session).upsert(
                tenant_id=tenant.id,
                subject="",  # the tenant's own budget (a key id would name a key's)
                period="month",
                limit_nanos=int(BUDGET_USD * 1_000_000_000),
                now=datetime.now(UTC),
            )
            return issued.secret
    finally:
        await engine.dispose()


async def _create_database(admin_url: str) -> tuple[str, str]:
    """A throwaway database beside ``admin_url``'s: (its name, its URL)."""
    import asyncpg

    name = "xyn_bench_" + uuid.uuid4().hex[:12]
    connection = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        # The name is generated above from hex digits only; no bound parameters here.
        await connection.execute(
            "CREATE DATABASE " + name
        )  # guard: allow XG001 generated identifier
    finally:
        await connection.close()
    return name, admin_url.rsplit("/", 1)[0] + "/" + name


async def _drop_database(admin_url: str, name: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        drop = "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"
        await connection.execute(drop)  # guard: allow XG001 generated identifier
    finally:
        await connection.close()


def _ledger_rows(bench: Bench) -> tuple[int, int] | None:
    """Rows in the usage ledger and nanos spent on the budget counters (SQLite)."""
    if bench.sqlite is None:
        return None
    import sqlite3

    with sqlite3.connect(bench.sqlite) as connection:
        rows = connection.execute("SELECT count(*) FROM ai_usage_events").fetchone()[0]
        spent = connection.execute(
            "SELECT coalesce(sum(spent_nanos), 0) FROM ai_budget_counters"
        ).fetchone()[0]
    return int(rows), int(spent)


# --- load ------------------------------------------------------------------------------


def _lua(headers: dict[str, str]) -> str:
    """A wrk script: POST a distinct prompt per request (a fresh run id per script)."""
    marker = "\x00"
    prefix, suffix = json.dumps(
        _body(f"{PROMPT}, request {secrets.token_hex(4)}-{marker}"), separators=(",", ":")
    ).split(json.dumps(marker)[1:-1])
    lines = ['wrk.method = "POST"', 'wrk.headers["Content-Type"] = "application/json"']
    lines += [f"wrk.headers[ {_long(name)} ] = {_long(value)}" for name, value in headers.items()]
    lines += [
        f"local prefix = {_long(prefix)}",
        f"local suffix = {_long(suffix)}",
        "local counter = 0",
        "function request()",
        "  counter = counter + 1",
        f'  return wrk.format("POST", {_long(GATEWAY_PATH)}, wrk.headers, prefix .. counter .. suffix)',
        "end",
    ]
    return "\n".join(lines) + "\n"


def _wrk(bench: Bench, base: str, seconds: int) -> tuple[LoadResult, int]:
    script = bench.workdir / f"load-{secrets.token_hex(4)}.lua"
    script.write_text(_lua(bench.auth), encoding="utf-8")
    command = [bench.wrk, "-t1", f"-c{bench.args.connections}", f"-d{seconds}s", "--latency"]
    done = subprocess.run(
        [*command, "-s", str(script), base + GATEWAY_PATH],
        capture_output=True,
        text=True,
        check=False,
        timeout=seconds + 60,
    )
    if done.returncode != 0 or done.stderr.strip():
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    total = next(
        int(line.split()[0]) for line in done.stdout.splitlines() if " requests in " in line
    )
    return parse_wrk(done.stdout), total


@dataclass(frozen=True, slots=True)
class Measured:
    """One measured run: wrk's figures, requests sent in all, server CPU per request."""

    result: LoadResult
    sent: int
    cpu_us_per_request: float


def _load(bench: Bench, base: str, pid: int) -> Measured:
    """Warm-up, then the measured run (server CPU read around it alone)."""
    warm = _wrk(bench, base, bench.args.warmup)[1] if bench.args.warmup > 0 else 0
    cpu_before = _cpu_seconds(pid)
    result, measured = _wrk(bench, base, bench.args.duration)
    cpu = _cpu_seconds(pid) - cpu_before
    return Measured(result, warm + measured, cpu * 1e6 / max(measured, 1))


def _post(base: str, headers: dict[str, str], prompt: str) -> tuple[int, dict[str, Any]]:
    body = json.dumps(_body(prompt))
    code, raw = _request("POST", base + GATEWAY_PATH, headers, body)
    return code, (json.loads(raw) if raw.startswith(b"{") else {})


# --- rows ------------------------------------------------------------------------------


def _measure_minimal(bench: Bench) -> Measured:
    with _minimal(bench) as (base, upstream, pid):
        code, answer = _post(base, bench.auth, PROMPT)
        if code != 200 or answer.get("object") != "chat.completion":
            raise RuntimeError(f"minimal proxy answered {code}: {answer}")
        measured = _load(bench, base, pid)
        calls = _upstream_calls(upstream)
    if calls < measured.sent + 1:
        raise RuntimeError(f"minimal proxy: {calls} upstream calls for {measured.sent + 1}")
    return measured


def _measure_gateway(bench: Bench, server: str, src: Path | None = None) -> Measured:
    rows_before = _ledger_rows(bench)
    with _gateway(bench, server, src) as (base, upstream, pid):
        anonymous = _post(base, {}, PROMPT)[0]
        if anonymous != 401:
            raise RuntimeError(f"gateway: POST without a key answered {anonymous}, not 401")
        code, answer = _post(base, bench.auth, f"{PROMPT} {secrets.token_hex(4)}")
        if code != 200 or answer.get("provider") != PROVIDER:
            raise RuntimeError(f"gateway answered {code}: {answer}")
        measured = _load(bench, base, pid)
        sent = measured.sent
        calls = _upstream_calls(upstream)
        text = _metrics(base + "/ai-routing-engine", bench.auth)
    merged = _metric(text, "xynergy_ai_deduplicated_requests_total")
    hits = _metric(text, "xynergy_cache_requests_total", namespace="ai", result="hit")
    workers = int(server.split("-")[1]) if "-" in server else 1
    # With several workers /metrics shows one process only: check the upstream alone.
    if calls < sent + 1 or (workers == 1 and (merged or hits)):
        raise RuntimeError(
            f"gateway ({server}): {calls} upstream calls for {sent + 1} requests, "
            f"{merged:.0f} merged, {hits:.0f} cache hits"
        )
    if rows_before is not None:
        rows_after = _ledger_rows(bench) or (0, 0)
        written = rows_after[0] - rows_before[0]
        charged = rows_after[1] > rows_before[1] or NO_BUDGET_ENV in bench.env
        if written < sent + 1 or not charged:
            raise RuntimeError(
                f"gateway ({server}): {written} ledger rows for {sent + 1} requests, "
                f"budget spend {rows_before[1]} -> {rows_after[1]} nanos"
            )
    return measured


def _granian_installed() -> bool:
    try:
        import granian  # noqa: F401
    except ImportError:
        return False
    return True


def _rows(bench: Bench) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [(MINIMAL, lambda: _measure_minimal(bench))]
    if bench.before_src is not None:
        rows.append((BEFORE, lambda: _measure_gateway(bench, "xynergy", bench.before_src)))
    rows.append((GATEWAY, lambda: _measure_gateway(bench, "xynergy")))
    if bench.args.servers:
        for server, name in SERVER_ROWS.items():
            if server.startswith("granian") and not _granian_installed():
                print(f"skipping {name}: granian is not installed", file=sys.stderr)
                continue
            rows.append((name, lambda server=server: _measure_gateway(bench, server)))
    return rows


def _run_rounds(args: argparse.Namespace, wrk: str, workdir: Path, env: dict[str, str]) -> Any:
    data_dir = Path(env["XYNERGY_DATA_DIR"])
    key = _prepare(env)
    sqlite = None if "XYNERGY_DATABASE_URL" in env else data_dir / "xynergy.db"
    before = _before_src(args, workdir)
    bench = Bench(workdir, env, key, wrk, args, sqlite, before)
    rows = _rows(bench)
    samples: dict[str, list[Measured]] = {name: [] for name, _ in rows}
    for round_number in range(1, args.rounds + 1):
        for name, measure in rows:
            print(f"[round {round_number}/{args.rounds}] {name} ...", file=sys.stderr)
            measured = measure()
            print(
                f"    {measured.result}, server CPU {measured.cpu_us_per_request:,.0f} µs/request",
                file=sys.stderr,
            )
            samples[name].append(measured)
    return samples


def _before_src(args: argparse.Namespace, workdir: Path) -> Path | None:
    """The src dir of ``--compare-src``, or ``--compare-ref``'s extracted by git archive."""
    if args.compare_src is not None:
        return Path(args.compare_src).resolve()
    if args.compare_ref is None:
        return None
    from sqlite_contention import _archive

    target = workdir / "before"
    target.mkdir()
    return _archive(args.compare_ref, target)


def _gateway_env(data_dir: Path, args: argparse.Namespace) -> dict[str, str]:
    env = {
        **platform_env(data_dir, access_log=True, redis_url=args.redis),
        "XYNERGY_AI_TOKENS_PER_MINUTE": HUGE_TOKENS,
        UPSTREAM_KEY_ENV: secrets.token_urlsafe(16),
    }
    if args.no_budget:
        env[NO_BUDGET_ENV] = "1"
    return env


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="AI gateway hot path vs a minimal proxy.")
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds before each run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (>= 1)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--servers", action="store_true", help="+ uvicorn workers, granian")
    parser.add_argument("--postgres", default=None, help="admin URL: a throwaway database")
    parser.add_argument("--redis", default=None, help="XYNERGY_REDIS_URL for the gateway")
    parser.add_argument("--no-budget", action="store_true", help="no tenant budget")
    parser.add_argument("--compare-ref", default=None, help="+ a gateway row on git REF's src")
    parser.add_argument("--compare-src", default=None, help="+ a gateway row on this src dir")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--serve-minimal", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.duration < 1 or args.warmup < 0 or args.connections < 1:
        parser.error("need --rounds >= 1, --duration >= 1, --warmup >= 0, --connections >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.serve_minimal is not None:
        _serve_minimal(args.serve_minimal)
        return 0
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not on PATH (apt-get install wrk): POST bodies need its Lua")
    load_before = machine()["loadavg_1m"]
    with tempfile.TemporaryDirectory(prefix="xynergy-bench-hot-") as tmp:
        workdir = Path(tmp)
        env = _gateway_env(workdir / "data", args)
        if args.postgres:
            name, url = asyncio.run(_create_database(args.postgres))
            try:
                # Production on PostgreSQL names each replica's DBOS executor.
                database = {"XYNERGY_DATABASE_URL": url, "XYNERGY_RUNTIME_EXECUTOR_ID": "bench-1"}
                samples = _run_rounds(args, wrk, workdir, {**env, **database})
            finally:
                asyncio.run(_drop_database(args.postgres, name))
        else:
            samples = _run_rounds(args, wrk, workdir, env)
    rows = summarize({name: [m.result for m in runs] for name, runs in samples.items()}, MINIMAL)
    ratio = next(row.ratio for row in rows if row.variant == GATEWAY)
    cpu = {
        name: statistics.median(m.cpu_us_per_request for m in runs)
        for name, runs in samples.items()
    }
    box = {**machine(), "loadavg_1m_before": load_before}
    database = "PostgreSQL" if args.postgres else "SQLite"
    if args.json:
        meta = {
            "machine": box,
            "database": database,
            "redis": bool(args.redis),
            "tenant_budget": not args.no_budget,
            "duration_seconds": args.duration,
            "rounds": args.rounds,
            "connections": args.connections,
            "goal": {"gateway_ratio_at_least": GOAL_RATIO, "value": ratio},
            "server_cpu_us_per_request": cpu,
        }
        document = to_json(rows, meta)
        document.pop("goal_ratio", None)
        print(json.dumps(document, indent=2, ensure_ascii=False))
        return 0
    header = [
        f"POST {GATEWAY_PATH}: median of {args.rounds} interleaved rounds x {args.duration}s "
        f"(after {args.warmup}s warm-up each)",
        f"machine: nproc={box['nproc']}, Python {box['python']}, "
        f"load avg (1 min) {load_before} before / {box['loadavg_1m']} after",
        f"gateway: {database}, Redis {'on' if args.redis else 'off'}, "
        f"tenant budget {'off' if args.no_budget else 'on'}, access log on; "
        "upstream: FastAPI fake on uvicorn (1 process)",
        f"load:    wrk ({wrk}), 1 thread, {args.connections} connections, distinct prompts",
        "ratio:   req/s / the minimal proxy's",
    ]
    if args.compare_ref or args.compare_src:
        header.append(
            f"before:  {BEFORE.split(': ')[0]} row = src of {args.compare_ref or args.compare_src}"
        )
    print(format_table(rows, header, []))
    rounds = ", ".join(
        f"{row.variant.split(':')[0]}: "
        + "/".join(f"{r.requests_per_second:,.0f}" for r in row.rounds)
        for row in rows
    )
    print(f"per round req/s: {rounds}")
    # Server CPU per request is what other processes on the machine move least.
    print(
        "server CPU µs/request (median; all workers): "
        + ", ".join(
            f"{name.split(':')[0].split(' (')[0]}: {value:,.0f}" for name, value in cpu.items()
        )
        + f"; minimal/gateway = {cpu[MINIMAL] / cpu[GATEWAY]:.2f}"
    )
    verdict = "met" if ratio >= GOAL_RATIO else "NOT met"
    print(
        f"goal: gateway >= {GOAL_RATIO:.0%} of the minimal proxy's req/s -> {ratio:.0%} "
        f"({verdict}; informational, never an assertion)"
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
