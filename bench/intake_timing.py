"""Beta applications: does a new e-mail take longer than a known one?

A public beta form answers the same 202 and the same bytes whether the e-mail
applied before or not; this measures whether its *time* tells them apart. One
Intelligence Gateway app runs in process (httpx ``ASGITransport``, full platform
stack) on a fresh, migrated database, with one beta form that has a webhook (so a
new application notifies it through the outbox). The background dispatcher is
stopped, so deliveries never compete with the requests being timed.

Requests alternate: one with a never-seen e-mail (``new``), one with an e-mail
that applied before (``known``), each with a fresh use-case text and a valid
form token, so neither is spam. After a warm-up, each row is the median (and
p90) of ``--samples`` requests of its kind; ``diff`` is median(new) - median(known)
and ``ratio`` median(new) / median(known). The requests are interleaved so drift,
garbage collection and checkpoints fall on both alike.

    .venv/bin/python bench/intake_timing.py [--samples 2000] [--postgres URL] [--json]

``--postgres`` takes an admin URL (e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test);
a throwaway database is created next to it and dropped afterwards, even on error.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import asyncpg
import httpx
import structlog

from xynergy.intelligence_gateway.app import create_intelligence_gateway_app
from xynergy.intelligence_gateway.config import IntakeSettings
from xynergy.intelligence_gateway.form_tokens import FormTokens
from xynergy.intelligence_gateway.models import IntakeForm
from xynergy.platform.config import DEFAULT_RATE_LIMITS, Settings
from xynergy.platform.db.migrate import upgrade_to_head
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.runtime import Platform
from xynergy.platform.tenancy import service as tenancy

BETA = "/api/beta-applications"
ORIGIN = "https://www.bench.example"
WARMUP_PAIRS = 100
UNLIMITED = "1000000000/hour"


@dataclass(frozen=True, slots=True)
class Row:
    database: str
    path: str
    samples: int
    p50_ms: float
    p90_ms: float
    diff_ms: float
    ratio: float


def _settings(database_url: str, data_dir: Path) -> Settings:
    return Settings(
        environment="test",
        data_dir=data_dir,
        database_url=database_url,
        internal_token_secret=secrets.token_urlsafe(48),
        access_log=False,
        gc_freeze_after_startup=False,
        rate_limits={name: UNLIMITED for name in DEFAULT_RATE_LIMITS},
        # Only what this module times may write: the dispatcher is stopped anyway.
        outbox_poll_seconds=300,
    )


def _intake() -> IntakeSettings:
    return IntakeSettings(
        rate_per_ip=UNLIMITED,
        rate_per_form=UNLIMITED,
        form_token_min_fill_seconds=0,
    )


async def _beta_form(platform: Platform) -> IntakeForm:
    async with unit_of_work(platform.sessionmaker) as session:
        tenant = await tenancy.create_tenant(session, name="bench-" + uuid.uuid4().hex[:8])
        form = IntakeForm(
            tenant_id=tenant.id,
            public_id="frm_" + secrets.token_urlsafe(15),
            kind="beta",
            name="Beta",
            allowed_origins=[ORIGIN],
            webhook_url="https://hooks.bench.example/intake",
            webhook_secret="whsec_" + secrets.token_urlsafe(32),
            active=True,
        )
        session.add(form)
    return form


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def measure(settings: Settings, label: str, samples: int) -> list[Row]:
    """Time ``samples`` new and ``samples`` known applications, interleaved."""
    app = create_intelligence_gateway_app(settings, intake=_intake())
    async with app.router.lifespan_context(app):
        await app.state.outbox.stop()
        platform: Platform = app.state.platform
        form = await _beta_form(platform)
        tokens = FormTokens.from_settings(
            app.state.intake,
            platform.internal_tokens.secrets,
            leeway_seconds=settings.internal_token_leeway_seconds,
        )
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            counter = 0

            async def post(email: str) -> float:
                nonlocal counter
                counter += 1
                body = {
                    "name": "Bench Applicant",
                    "email": email,
                    "use_case": f"Benchmarking the intake, request number {counter}.",
                    "form_token": tokens.issue(form.public_id, now=time.time() - 60),
                }
                started = time.perf_counter()
                response = await client.post(
                    BETA, params={"form": form.public_id}, json=body, headers={"Origin": ORIGIN}
                )
                elapsed = time.perf_counter() - started
                if response.status_code != 202:
                    raise SystemExit(f"unexpected answer {response.status_code}: {response.text}")
                return elapsed * 1000

            known = "known@bench.example"
            await post(known)
            timings: dict[str, list[float]] = {"new": [], "known": []}
            for index in range(WARMUP_PAIRS + samples):
                # Alternate which goes first, so neither always follows the other.
                order = ("new", "known") if index % 2 else ("known", "new")
                for path in order:
                    email = f"new{index}@bench.example" if path == "new" else known
                    elapsed = await post(email)
                    if index >= WARMUP_PAIRS:
                        timings[path].append(elapsed)
    new, old = statistics.median(timings["new"]), statistics.median(timings["known"])
    return [
        Row(
            label,
            path,
            len(values),
            statistics.median(values),
            _percentile(values, 0.9),
            new - old,
            statistics.median(values) / old,
        )
        for path, values in timings.items()
    ]


@asynccontextmanager
async def _postgres(admin_url: str) -> AsyncIterator[str]:
    name = "xyn_bench_" + uuid.uuid4().hex[:12]
    dsn = admin_url.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(dsn)
    try:
        # The name is generated above from hex digits only; CREATE DATABASE takes
        # no bound parameters.
        await connection.execute(
            "CREATE DATABASE " + name
        )  # guard: allow XG001 generated identifier
    finally:
        await connection.close()
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        connection = await asyncpg.connect(dsn)
        try:
            drop = "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"
            await connection.execute(drop)  # guard: allow XG001 generated identifier
        finally:
            await connection.close()


async def run(samples: int, postgres: str | None) -> list[Row]:
    """Every row: SQLite always, PostgreSQL when ``postgres`` is given."""
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="xyn-bench-intake-") as tmp:
        data_dir = Path(tmp)
        sqlite = _settings(f"sqlite+aiosqlite:///{data_dir / 'bench.db'}", data_dir)
        await asyncio.to_thread(upgrade_to_head, sqlite)
        rows += await measure(sqlite, "SQLite", samples)
        if postgres:
            async with _postgres(postgres) as url:
                settings = _settings(url, data_dir)
                await asyncio.to_thread(upgrade_to_head, settings)
                rows += await measure(settings, "PostgreSQL", samples)
    return rows


def _table(rows: list[Row], samples: int) -> str:
    load = os.getloadavg()[0]
    lines = [
        f"POST {BETA}: new vs known e-mail, median of {samples} interleaved requests each",
        f"machine: nproc={os.cpu_count()}, Python {sys.version.split()[0]}, "
        f"load avg (1 min) {load:.2f}",
        "",
        f"{'database':<11} {'path':<6} {'samples':>7} {'p50 ms':>7} {'p90 ms':>7} "
        f"{'new-known ms':>12} {'ratio':>6}",
    ]
    lines.append("-" * len(lines[-1]))
    for row in rows:
        lines.append(
            f"{row.database:<11} {row.path:<6} {row.samples:>7} {row.p50_ms:>7.3f} "
            f"{row.p90_ms:>7.3f} {row.diff_ms:>12.3f} {row.ratio:>6.2f}"
        )
    lines.append("-" * len(lines[4]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Parse flags, run, print the table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--postgres", default=None, help="admin URL of a PostgreSQL server")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.samples < 10:
        parser.error("--samples must be at least 10")
    # Platform logs go to stderr and only from warnings up: stdout is the table.
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    )
    gc.collect()
    rows = asyncio.run(run(args.samples, args.postgres))
    if args.json:
        print(json.dumps([asdict(row) for row in rows], indent=2))
    else:
        print(_table(rows, args.samples))


if __name__ == "__main__":
    main()
