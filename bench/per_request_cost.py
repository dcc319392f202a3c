"""What one request costs PostgreSQL and Redis: statements and commands per request kind.

The all-in-one app (every service, one ``Platform``) runs in process (httpx
``ASGITransport``, full stack) on a throwaway PostgreSQL database and the local
Redis under a fresh key prefix. Every SQL statement any SQLAlchemy engine of the
process sends is counted (``before_cursor_execute`` on ``Engine``: the app's
asyncpg engine and DBOS's psycopg one, told apart by driver; commits counted as
transactions), and every Redis command any connection of the process sends
(``pack_command`` of redis-py's asyncio connection, which pipelines and Lua
calls go through too). Counting in process, not with ``MONITOR``, keeps other
users of the shared Redis out of the figures.

A replica also talks to both while idle (DBOS queue polling, the revocation
epoch poll, heartbeats, rollups). That rate is measured first, over
``--idle-seconds``, and subtracted from each kind's window, which ends
``--settle-seconds`` after its last answer so write-behind (AI ledger, run rows)
is inside it. Requests are sequential: the figures are counts, not timings.

    .venv/bin/python bench/per_request_cost.py [--requests 40] [--json]
        [--postgres ADMIN_URL] [--redis URL]

``--postgres`` is an admin URL (default the test server); a throwaway database is
created beside it and dropped afterwards, even on error. The Redis keys under
the run's prefix are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import structlog
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from sqlalchemy import event
from sqlalchemy.engine import Engine

ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
UNLIMITED = "1000000000/hour"
SITE = "https://www.bench.example"
WARMUP = 3  # requests of each kind before its window: pools, caches and memos filled
RUN_WAIT_SECONDS = 120.0  # every started run must end within this, or the row says so
ENDED = ("succeeded", "failed", "cancelled")
DEFINITION = "bench-cost"
SCOPES = [
    "content:read",
    "content:write",
    "keywords:read",
    "ai:generate",
    "ai:budgets",
    "workflows:read",
    "workflows:write",
    "intake:admin",
    "intake:read",
]


class Tally:
    """Statements, transactions and Redis commands seen, from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def add(self, name: str) -> None:
        with self._lock:
            self.counts[name] += 1

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.counts)


def install_counters(tally: Tally) -> Callable[[], None]:
    """Count every statement and Redis command of this process; returns the undo."""

    def on_statement(conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        # DBOS speaks psycopg, the platform asyncpg.
        source = "dbos" if conn.engine.dialect.driver.startswith("psycopg") else "app"
        tally.add(f"sql:{source}")
        verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "?"
        tally.add(f"sqlverb:{source}:{verb}")

    def on_commit(conn: Any) -> None:
        source = "dbos" if conn.engine.dialect.driver.startswith("psycopg") else "app"
        tally.add(f"tx:{source}")

    original = AbstractConnection.pack_command

    def counting_pack(self: AbstractConnection, *args: Any) -> Any:
        name = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
        tally.add("redis")
        tally.add(f"rcmd:{name.split()[0].upper()}")
        return original(self, *args)

    event.listen(Engine, "before_cursor_execute", on_statement)
    event.listen(Engine, "commit", on_commit)
    AbstractConnection.pack_command = counting_pack  # type: ignore[method-assign]

    def undo() -> None:
        event.remove(Engine, "before_cursor_execute", on_statement)
        event.remove(Engine, "commit", on_commit)
        AbstractConnection.pack_command = original  # type: ignore[method-assign]

    return undo


@dataclass(slots=True)
class Row:
    kind: str
    requests: int
    statuses: dict[int, int]
    app_sql: float
    app_tx: float
    dbos_sql: float
    redis: float
    seconds: float
    sql_verbs: dict[str, float] = field(default_factory=dict)
    redis_commands: dict[str, float] = field(default_factory=dict)


def _per(delta: Counter[str], name: str, idle: dict[str, float], seconds: float, n: int) -> float:
    return max(0.0, delta[name] - idle.get(name, 0.0) * seconds) / n


def _breakdown(delta: Counter[str], prefix: str, n: int) -> dict[str, float]:
    """Per-request counts by name under ``prefix``, background included (largest first)."""
    items = [(name[len(prefix) :], count / n) for name, count in delta.items()]
    picked = [(name, value) for name, value in items if value >= 0.05]
    return dict(sorted(picked, key=lambda item: -item[1]))


def _only(delta: Counter[str], prefix: str) -> Counter[str]:
    return Counter({name: count for name, count in delta.items() if name.startswith(prefix)})


@dataclass
class Bench:
    client: httpx.AsyncClient
    public: httpx.AsyncClient
    tally: Tally
    pg_dsn: str
    settle: float
    idle: dict[str, float] = field(default_factory=dict)
    form: str = ""
    serial: int = 0

    async def measure_idle(self, seconds: float) -> Row:
        before, started = self.tally.snapshot(), time.monotonic()
        await asyncio.sleep(seconds)
        delta, elapsed = self.tally.snapshot() - before, time.monotonic() - started
        self.idle = {name: count / elapsed for name, count in delta.items()}
        return Row(
            kind="idle replica, per second",
            requests=0,
            statuses={},
            app_sql=delta["sql:app"] / elapsed,
            app_tx=delta["tx:app"] / elapsed,
            dbos_sql=delta["sql:dbos"] / elapsed,
            redis=delta["redis"] / elapsed,
            seconds=elapsed,
            sql_verbs=_breakdown(_only(delta, "sqlverb:"), "sqlverb:", round(elapsed) or 1),
            redis_commands=_breakdown(_only(delta, "rcmd:"), "rcmd:", round(elapsed) or 1),
        )

    async def measure(
        self,
        kind: str,
        one: Callable[[], Awaitable[tuple[int, str | None]]],
        n: int,
        *,
        runs: bool = False,
    ) -> Row:
        for _ in range(WARMUP):
            await one()
        await self._wait_runs([])  # nothing of the warm-up still running
        await asyncio.sleep(self.settle)
        before, started = self.tally.snapshot(), time.monotonic()
        statuses: Counter[int] = Counter()
        run_ids: list[str] = []
        for _ in range(n):
            status, run_id = await one()
            statuses[status] += 1
            if run_id:
                run_ids.append(run_id)
        if runs:
            await self._wait_runs(run_ids)
        await asyncio.sleep(self.settle)
        delta, elapsed = self.tally.snapshot() - before, time.monotonic() - started
        return Row(
            kind=kind,
            requests=n,
            statuses=dict(statuses),
            app_sql=_per(delta, "sql:app", self.idle, elapsed, n),
            app_tx=_per(delta, "tx:app", self.idle, elapsed, n),
            dbos_sql=_per(delta, "sql:dbos", self.idle, elapsed, n),
            redis=_per(delta, "redis", self.idle, elapsed, n),
            seconds=elapsed,
            sql_verbs=_breakdown(_only(delta, "sqlverb:"), "sqlverb:", n),
            redis_commands=_breakdown(_only(delta, "rcmd:"), "rcmd:", n),
        )

    async def _wait_runs(self, run_ids: list[str]) -> None:
        """Until every run in ``run_ids`` (or every run, if empty) has ended. Read over
        a connection of its own (raw asyncpg), so the waiting is not counted."""
        connection = await asyncpg.connect(self.pg_dsn)
        try:
            deadline = time.monotonic() + RUN_WAIT_SECONDS
            while time.monotonic() < deadline:
                if run_ids:
                    open_runs = await connection.fetchval(
                        "SELECT count(*) FROM runtime_runs WHERE id = ANY($1::text[])"
                        " AND status <> ALL($2::text[])",
                        run_ids,
                        list(ENDED),
                    )
                    open_runs += len(run_ids) - await connection.fetchval(
                        "SELECT count(*) FROM runtime_runs WHERE id = ANY($1::text[])", run_ids
                    )
                else:
                    open_runs = await connection.fetchval(
                        "SELECT count(*) FROM runtime_runs WHERE status <> ALL($1::text[])",
                        list(ENDED),
                    )
                if not open_runs:
                    return
                await asyncio.sleep(0.2)
            print(f"warning: runs still open after {RUN_WAIT_SECONDS:.0f}s", file=sys.stderr)
        finally:
            await connection.close()

    # --- the request kinds ---------------------------------------------------------

    async def cached_read(self) -> tuple[int, str | None]:
        response = await self.client.get("/aso-engine/api/content", params={"limit": 20})
        return response.status_code, None

    async def uncached_read(self) -> tuple[int, str | None]:
        response = await self.client.get(
            "/system-runtime/api/workflow-definitions", params={"limit": 20}
        )
        return response.status_code, None

    async def idempotent_write(self) -> tuple[int, str | None]:
        self.serial += 1
        response = await self.client.post(
            "/aso-engine/api/content",
            json={"title": f"Bench piece {self.serial}", "author": "bench", "body": "x" * 200},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        return response.status_code, None

    async def _chat(self, content: str) -> int:
        response = await self.client.post(
            "/ai-routing-engine/v1/chat/completions",
            json={
                "model": "xynergy-offline",
                "messages": [{"role": "user", "content": content}],
                "max_tokens": 30,
            },
        )
        return response.status_code

    async def ai_miss(self) -> tuple[int, str | None]:
        return await self._chat(f"keywords for unique {uuid.uuid4().hex}"), None

    async def ai_hit(self) -> tuple[int, str | None]:
        return await self._chat("keywords for meditation apps"), None

    async def intake_token(self) -> tuple[int, str | None]:
        response = await self.public.get(f"/intelligence-gateway/api/forms/{self.form}/token")
        return response.status_code, None

    async def intake_post(self) -> tuple[int, str | None]:
        # A visitor fetches a form token, then posts: both are in this row (the
        # token alone is the row above it).
        token = (await self.public.get(f"/intelligence-gateway/api/forms/{self.form}/token")).json()
        self.serial += 1
        response = await self.public.post(
            "/intelligence-gateway/api/contact",
            params={"form": self.form},
            json={
                "name": "Grace Hopper",
                "email": f"visitor{self.serial}@example.com",
                "message": "Please call me back about pricing.",
                "form_token": token["token"],
            },
        )
        return response.status_code, None

    async def workflow(self) -> tuple[int, str | None]:
        response = await self.client.post(
            "/system-runtime/api/workflows/start", json={"definition": DEFINITION}
        )
        run_id = response.json().get("id") if response.status_code == 202 else None
        return response.status_code, run_id

    # --- set-up ------------------------------------------------------------------

    async def prepare(self) -> None:
        form = await self.client.post(
            "/intelligence-gateway/api/forms",
            json={"kind": "contact", "name": "Bench contact", "allowed_origins": [SITE]},
        )
        assert form.status_code == 201, form.text  # noqa: S101
        self.form = form.json()["public_id"]
        definition = await self.client.post(
            "/system-runtime/api/workflow-definitions",
            json={
                "name": DEFINITION,
                "steps": [
                    {"id": "list", "operation": "aso.list_keywords", "input": {}},
                    {
                        "id": "create",
                        "operation": "aso.create_content",
                        "input": {"title": "Made by a run", "author": "bench"},
                        "depends_on": ["list"],
                    },
                ],
            },
        )
        assert definition.status_code == 201, definition.text  # noqa: S101
        budget = await self.client.put(
            "/ai-routing-engine/api/budgets", json={"period": "month", "limit_usd": "1000"}
        )
        assert budget.status_code in (200, 201), budget.text  # noqa: S101


# --- the throwaway backends -------------------------------------------------------


@asynccontextmanager
async def scratch_database(admin_url: str) -> AsyncIterator[tuple[str, str]]:
    """A new database beside ``admin_url``'s: (SQLAlchemy URL, asyncpg DSN); dropped after."""
    admin_dsn = admin_url.replace("postgresql+asyncpg://", "postgresql://")
    name = f"xyn_bench_cost_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        base = admin_dsn.rsplit("/", 1)[0]
        try:
            yield f"postgresql+asyncpg://{base.split('://', 1)[1]}/{name}", f"{base}/{name}"
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def delete_prefix(redis_url: str, prefix: str) -> int:
    """Delete the run's keys (SCAN, bounded batches): the bench leaves nothing behind."""
    client = Redis.from_url(redis_url)
    deleted = 0
    try:
        async for key in client.scan_iter(match=prefix + "*", count=500):
            deleted += await client.delete(key)
    finally:
        await client.aclose()
    return deleted


# --- the run ----------------------------------------------------------------------


def _environment(database_url: str, redis_url: str, prefix: str) -> None:
    """``XYNERGY_*`` for this process only: the caller's own are removed first."""
    for name in [name for name in os.environ if name.startswith("XYNERGY_")]:
        del os.environ[name]
    os.environ.update(
        {
            "XYNERGY_ENVIRONMENT": "test",
            "XYNERGY_DATABASE_URL": database_url,
            "XYNERGY_REDIS_URL": redis_url,
            "XYNERGY_REDIS_KEY_PREFIX": prefix,
            "XYNERGY_INTERNAL_TOKEN_SECRET": secrets.token_urlsafe(48),
            "XYNERGY_ACCESS_LOG": "false",
            "XYNERGY_LOG_LEVEL": "WARNING",
            "XYNERGY_GC_FREEZE_AFTER_STARTUP": "false",
            "XYNERGY_INTAKE_FORM_TOKEN_MIN_FILL_SECONDS": "0",
            "XYNERGY_INTAKE_RATE_PER_IP": UNLIMITED,
            "XYNERGY_INTAKE_RATE_PER_FORM": UNLIMITED,
        }
    )


async def run(args: argparse.Namespace) -> tuple[list[Row], dict[str, Any]]:
    prefix = f"xynbench:cost:{secrets.token_hex(4)}:"
    async with scratch_database(args.postgres) as (database_url, pg_dsn):
        _environment(database_url, args.redis, prefix)
        # Imported after the environment is set: nothing reads it at import, but
        # the heavy imports stay out of --help.
        from xynergy.platform.config import DEFAULT_RATE_LIMITS, Settings
        from xynergy.platform.db.migrate import upgrade_to_head
        from xynergy.platform.db.session import unit_of_work
        from xynergy.platform.tenancy import service as tenancy
        from xynergy.server import build_all_in_one
        from xynergy.system_runtime.config import RuntimeSettings
        from xynergy.system_runtime.engine.host import migrate_system_database

        os.environ["XYNERGY_RATE_LIMITS"] = json.dumps(
            dict.fromkeys(DEFAULT_RATE_LIMITS, UNLIMITED)
        )
        settings = Settings()
        # Both run their own event loops: off this one.
        await asyncio.to_thread(upgrade_to_head, settings)
        await asyncio.to_thread(migrate_system_database, settings, RuntimeSettings())
        app = build_all_in_one(settings)
        tally = Tally()
        undo = install_counters(tally)
        try:
            async with app.router.lifespan_context(app):
                platform = app.state.platform
                async with unit_of_work(platform.sessionmaker) as session:
                    tenant = await tenancy.create_tenant(session, name="bench-cost")
                    issued = await tenancy.create_key(
                        session, tenant_id=tenant.id, name="bench", scopes=SCOPES
                    )
                transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
                async with (
                    httpx.AsyncClient(
                        transport=transport,
                        base_url="http://testserver",
                        headers={"Authorization": f"Bearer {issued.secret}"},
                        timeout=60,
                    ) as client,
                    httpx.AsyncClient(
                        transport=transport,
                        base_url="http://testserver",
                        headers={"Origin": SITE},
                        timeout=60,
                    ) as public,
                ):
                    bench = Bench(client, public, tally, pg_dsn, args.settle_seconds)
                    await bench.prepare()
                    await asyncio.sleep(args.settle_seconds)
                    n, w = args.requests, args.workflows
                    rows = [await bench.measure_idle(args.idle_seconds)]
                    rows.append(
                        await bench.measure("cached read (content list)", bench.cached_read, n)
                    )
                    rows.append(
                        await bench.measure("uncached read (definitions)", bench.uncached_read, n)
                    )
                    rows.append(
                        await bench.measure("write + Idempotency-Key", bench.idempotent_write, n)
                    )
                    rows.append(await bench.measure("AI chat, cache miss", bench.ai_miss, n))
                    rows.append(await bench.measure("AI chat, cache hit", bench.ai_hit, n))
                    token_row = await bench.measure(
                        "public intake: form token", bench.intake_token, n
                    )
                    rows.append(token_row)
                    post_row = await bench.measure(
                        "public intake: token + post", bench.intake_post, n
                    )
                    rows.append(post_row)
                    rows.append(
                        await bench.measure(
                            "workflow start + 2 steps", bench.workflow, w, runs=True
                        )
                    )
        finally:
            undo()
            deleted = await delete_prefix(args.redis, prefix)
    totals = tally.snapshot()
    # Whole-run totals, start-up included: to check the counting against another
    # count (redis-cli MONITOR filtered by the prefix, pg_stat_statements).
    facts = {
        "redis_keys_deleted": deleted,
        "prefix": prefix,
        "redis_commands_total": totals["redis"],
        "sql_statements_total": totals["sql:app"] + totals["sql:dbos"],
    }
    return rows, facts


def _table(rows: list[Row]) -> str:
    header = (
        f"{'kind':<32} {'n':>4} {'app SQL':>8} {'app tx':>7} {'DBOS SQL':>9} {'Redis':>6}"
        "  statuses / top Redis commands per request"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        commands = ", ".join(
            f"{name} {value:.1f}" for name, value in list(row.redis_commands.items())[:5]
        )
        statuses = ",".join(f"{code}x{count}" for code, count in sorted(row.statuses.items()))
        lines.append(
            f"{row.kind:<32} {row.requests:>4} {row.app_sql:>8.2f} {row.app_tx:>7.2f}"
            f" {row.dbos_sql:>9.2f} {row.redis:>6.2f}  {statuses or '-'} | {commands}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres", default=ADMIN_URL, help="admin URL of the PostgreSQL server")
    parser.add_argument("--redis", default=REDIS_URL)
    parser.add_argument("--requests", type=int, default=40, help="requests per kind (1-1000)")
    parser.add_argument("--workflows", type=int, default=20, help="workflow starts (1-200)")
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--settle-seconds", type=float, default=1.5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    args.requests = max(1, min(args.requests, 1000))
    args.workflows = max(1, min(args.workflows, 200))
    # Platform logs go to stderr and only from warnings up: stdout is the table.
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    )
    rows, facts = asyncio.run(run(args))
    if args.json:
        print(json.dumps({"rows": [asdict(row) for row in rows], **facts}, indent=2))
        return 0
    print(
        "Per-request cost on PostgreSQL and Redis (all-in-one app, in process; idle rate subtracted)"
    )
    print(_table(rows))
    print()
    for row in rows:
        verbs = ", ".join(f"{name} {value:.1f}" for name, value in list(row.sql_verbs.items())[:6])
        print(f"{row.kind}: SQL by verb (background included): {verbs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
