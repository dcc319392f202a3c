"""What the durability tests share: a receiving service, real runtime servers, runs.

The runtime under test is a real ``xynergy serve`` process (``tests.live_server``).
Its steps call ``EffectLedger``, a small HTTP service in the test process on
127.0.0.1, through the operation ``ledger.record`` that the server learns from
``XYNERGY_RUNTIME_EXTRA_OPERATIONS`` (``POST /effects/{label}``). The ledger
does what every writing endpoint of the platform does with an ``Idempotency-Key``:
the first call with a key performs the side effect and stores its answer, a
repeat answers that stored answer without a second effect, and a repeat while the
first is still being served answers 409 ``idempotency_in_progress`` (which the
runtime retries). It counts both calls and side effects per key, so a repeated
call is visible without being a second effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import async_sessionmaker

from tests.helpers import auth
from tests.live_server import LOOPBACK, LiveServer, live_server
from xynergy.platform.config import DEFAULT_RATE_LIMITS
from xynergy.platform.db.engine import create_engine_from_settings
from xynergy.platform.db.session import unit_of_work
from xynergy.system_runtime.models import RunRecord, WorkflowDefinition

__all__ = [
    "LEDGER_SCOPES",
    "RUN_SCOPES",
    "EffectLedger",
    "chain_definition",
    "dbos_workflows",
    "effect_ledger",
    "entered_together",
    "runtime_server",
    "start_runs",
    "store_definition",
    "wait_for_run",
    "wait_for_statuses",
]

LEDGER_SERVICE = "ledger"
LEDGER_OPERATION = "ledger.record"
LEDGER_SCOPES = ("content:write",)
RUN_SCOPES = ("workflows:write", "workflows:read", *LEDGER_SCOPES)
_RUN_KEY_PREFIX = "xynergy-run-"
T = TypeVar("T")
_ENDED = frozenset({"succeeded", "failed", "cancelled"})
# Importing every service takes seconds, more on a busy box with two starting at once.
STARTUP_TIMEOUT_SECONDS = 120.0


@dataclass
class _Record:
    answer: bytes | None = None  # None while the first call is being served


@dataclass
class EffectLedger:
    """The receiving service's books (read them from the test thread)."""

    server: ThreadingHTTPServer
    calls: Counter[str] = field(default_factory=Counter)
    effects: Counter[str] = field(default_factory=Counter)
    caller_ports: dict[str, int] = field(default_factory=dict)
    _records: dict[str, _Record] = field(default_factory=dict)
    _arrived: dict[str, threading.Event] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def arrival(self, label: str) -> threading.Event:
        """Set when the first call for step ``label`` (of any run) arrives."""
        with self._lock:
            return self._arrived.setdefault(label, threading.Event())

    def receive(self, key: str, label: str, hold_seconds: float) -> tuple[int, bytes]:
        with self._lock:
            self.calls[key] += 1
            record = self._records.get(key)
            if record is None:
                self._records[key] = record = _Record()
                first = True
            else:
                first = False
            arrived = self._arrived.setdefault(label, threading.Event())
        if not first:
            if record.answer is None:
                return HTTPStatus.CONFLICT, json.dumps(
                    {"error": "idempotency_in_progress", "detail": "still being served"}
                ).encode()
            return HTTPStatus.OK, record.answer
        arrived.set()
        time.sleep(hold_seconds)
        with self._lock:
            # The side effect: performed once per key, even if the caller is gone.
            self.effects[key] += 1
            answer = json.dumps({"label": label, "effect": len(self.effects)}).encode()
            record.answer = answer
        return HTTPStatus.OK, answer


def _handler(ledger_ref: list[EffectLedger]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            prefix = "/effects/"
            key = self.headers.get("Idempotency-Key")
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            if not self.path.startswith(prefix) or not key:
                self._answer(HTTPStatus.BAD_REQUEST, b'{"error":"bad_request"}')
                return
            status, answer = ledger_ref[0].receive(
                key, self.path.removeprefix(prefix), float(body.get("hold_seconds") or 0)
            )
            self._answer(status, answer)

        def _answer(self, status: int, answer: bytes) -> None:
            with contextlib.suppress(OSError):  # the caller may have died meanwhile
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return  # quiet: the test reads the books, not the log

    return Handler


@contextmanager
def effect_ledger() -> Iterator[EffectLedger]:
    """An ``EffectLedger`` serving on a free 127.0.0.1 port until the block exits."""
    ledger_ref: list[EffectLedger] = []
    server = ThreadingHTTPServer((LOOPBACK, 0), _handler(ledger_ref))
    server.daemon_threads = True
    ledger = EffectLedger(server=server)
    ledger_ref.append(ledger)
    thread = threading.Thread(target=server.serve_forever, name="effect-ledger", daemon=True)
    thread.start()
    try:
        yield ledger
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def runtime_env(
    ledger: EffectLedger, *, database_url: str, executor_id: str = "local", **extra: str
) -> dict[str, str]:
    """A runtime server's settings: the ledger as a service, its operation, fast queues."""
    operation = {
        "name": LEDGER_OPERATION,
        "service": LEDGER_SERVICE,
        "method": "POST",
        "path": "/effects/{label}",
        "scopes": list(LEDGER_SCOPES),
        "description": "Record a side effect at the test's receiving service.",
    }
    env = {
        "XYNERGY_SERVICE_URLS": json.dumps({LEDGER_SERVICE: ledger.url}),
        "XYNERGY_RUNTIME_EXTRA_OPERATIONS": json.dumps([operation]),
        "XYNERGY_RUNTIME_EXECUTOR_ID": executor_id,
        "XYNERGY_RUNTIME_QUEUE_POLL_SECONDS": "0.05",
        "XYNERGY_RUNTIME_RETRY_BASE_SECONDS": "0.2",
        "XYNERGY_RATE_LIMITS": json.dumps(
            DEFAULT_RATE_LIMITS | {"workflow_start": "100000/hour", "reads": "100000/hour"}
        ),
        "XYNERGY_DATABASE_URL": database_url,
    }
    return env | extra


@contextmanager
def runtime_server(
    ledger: EffectLedger,
    *,
    data_dir: Path,
    database_url: str,
    executor_id: str = "local",
    **extra: str,
) -> Iterator[LiveServer]:
    """``xynergy serve`` (all-in-one) on a migrated database, its runs able to call the ledger."""
    env = runtime_env(ledger, database_url=database_url, executor_id=executor_id, **extra)
    # The fixtures' databases are migrated already: no `xynergy migrate` (seconds each).
    with live_server(
        env, data_dir=data_dir, migrate=False, startup_timeout=STARTUP_TIMEOUT_SECONDS
    ) as server:
        yield server


@contextmanager
def entered_together(contexts: Sequence[AbstractContextManager[T]]) -> Iterator[list[T]]:
    """Enter every context at once (a thread each); exit each one that entered."""
    with ExitStack() as stack, ThreadPoolExecutor(max_workers=len(contexts)) as pool:
        futures = [pool.submit(context.__enter__) for context in contexts]
        wait(futures)
        for context, future in zip(contexts, futures, strict=True):
            if future.exception() is None:
                stack.push(context.__exit__)
        yield [future.result() for future in futures]


def chain_definition(
    name: str, labels: Sequence[str], holds: Mapping[str, float]
) -> dict[str, Any]:
    """Steps ``labels`` one after another, each recording one effect at the ledger."""
    steps: list[dict[str, Any]] = []
    for index, label in enumerate(labels):
        steps.append(
            {
                "id": label,
                "operation": LEDGER_OPERATION,
                "input": {"label": label, "hold_seconds": holds.get(label, 0.0)},
                "depends_on": [labels[index - 1]] if index else [],
                "max_attempts": 10,
            }
        )
    return {"name": name, "steps": steps}


def store_definition(server: LiveServer, tenant: str, spec: dict[str, Any]) -> None:
    """Store ``spec`` as version 1 of a definition of ``tenant`` (straight into the database)."""
    tenant_id = server.tenant_id(tenant)

    async def store() -> None:
        engine = create_engine_from_settings(server.settings())
        try:
            sessions = async_sessionmaker(engine, expire_on_commit=False)
            async with unit_of_work(sessions) as session:
                session.add(
                    WorkflowDefinition(
                        tenant_id=tenant_id,
                        name=spec["name"],
                        version=1,
                        spec=spec,
                        created_by_key_id="durability-test",
                    )
                )
        finally:
            await engine.dispose()

    _run(store())


def start_runs(
    servers: Sequence[LiveServer], secret: str, definition: str, count: int, *, parallel: int = 8
) -> list[str]:
    """Start ``count`` runs, spread in turn over ``servers``; their ids, in order."""

    def start(index: int) -> str:
        server = servers[index % len(servers)]
        response = httpx.post(
            server.base_url + "/system-runtime/api/workflows/start",
            json={"definition": definition},
            headers=auth(secret),
            timeout=30,
        )
        assert response.status_code == HTTPStatus.ACCEPTED, response.text
        return str(response.json()["id"])

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        return list(pool.map(start, range(count)))


def run_status(server: LiveServer, secret: str, run_id: str) -> dict[str, Any]:
    response = httpx.get(
        f"{server.base_url}/system-runtime/api/workflows/{run_id}",
        headers=auth(secret),
        timeout=30,
    )
    assert response.status_code == HTTPStatus.OK, response.text
    detail: dict[str, Any] = response.json()
    return detail


def wait_for_run(server: LiveServer, secret: str, run_id: str, *, timeout: float) -> dict[str, Any]:
    """The run's detail (``GET /api/workflows/{id}``) once it has ended, or at the timeout."""
    deadline = time.monotonic() + timeout
    detail = run_status(server, secret, run_id)
    while detail["status"] not in _ENDED and time.monotonic() < deadline:
        time.sleep(0.1)
        detail = run_status(server, secret, run_id)
    return detail


def wait_for_statuses(
    server: LiveServer, run_ids: Sequence[str], *, stall_seconds: float
) -> Counter[str]:
    """How many of ``run_ids`` are in each status, once every one has ended, or once
    none has ended for ``stall_seconds`` (a stall fails the test; a slow box does not).

    Read from the runs table in one query per look: polling hundreds of runs one
    ``GET`` at a time would cost the servers more than executing them.
    """

    async def statuses(ids: list[str]) -> Counter[str]:
        engine = create_engine_from_settings(server.settings())
        ended, progress_at = -1, time.monotonic()
        try:
            while True:
                async with engine.connect() as connection:
                    rows = await connection.execute(
                        select(RunRecord.status, func.count())
                        .where(RunRecord.id.in_(ids))
                        .group_by(RunRecord.status)
                    )
                    counts: Counter[str] = Counter({status: count for status, count in rows})
                now_ended = sum(count for status, count in counts.items() if status in _ENDED)
                if now_ended > ended:
                    ended, progress_at = now_ended, time.monotonic()
                if now_ended == len(ids) or time.monotonic() - progress_at > stall_seconds:
                    return counts
                await asyncio.sleep(0.2)
        finally:
            await engine.dispose()

    result: Counter[str] = _run(statuses(list(run_ids)))
    return result


def dbos_workflows(server: LiveServer, workflow_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """DBOS's own record of each workflow: status, executor, recovery attempts."""

    async def read() -> dict[str, dict[str, Any]]:
        engine = create_engine_from_settings(server.settings())
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(
                    text(
                        "SELECT workflow_uuid, status, executor_id, recovery_attempts "
                        "FROM xynergy_dbos.workflow_status WHERE workflow_uuid = ANY(:ids) "
                        "LIMIT 10000"
                    ),
                    {"ids": list(workflow_ids)},
                )
                return {row[0]: dict(row._mapping) for row in rows}
        finally:
            await engine.dispose()

    return _run(read())


def ledger_key(run_id: str, label: str) -> str:
    """The idempotency key the runtime sends for step ``label`` of run ``run_id``."""
    return f"{_RUN_KEY_PREFIX}{run_id}-{label}"


def _run(work: Any) -> Any:
    # A thread of its own: works whether or not the caller runs an event loop.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work).result()
