"""PostgreSQL restarted under load: 503 + Retry-After meanwhile, bounded waits, pools recover,
and writes carrying an Idempotency-Key are never duplicated by clients retrying.

A cluster of its own runs on a PostgreSQL cluster of its own (``own_services``;
the machine's server is never stopped). While wrk reads a database-backed list
through nginx and writer clients create content pieces, each under its own
Idempotency-Key, the server is stopped as an operator restart does (``pg_ctl -m
fast``) for ``OUTAGE_SECONDS`` (20 s with ``XYNERGY_FULL_FAULTS=1``) and started
again. Writers retry what they are told to retry (503, 409 in progress) after
Retry-After, and send every write once more after it succeeded, as a client
whose answer was lost would: the repeat must be a replay, not a second row.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest

from tests.cluster.own_services import (
    GENEROUS_LIMITS,
    OwnPostgres,
    dedicated_cluster,
    skip_unless_postgres_binaries,
    tenant_key,
)
from tests.cluster.support import (
    WRK_TIMEOUT_SECONDS,
    admin_headers,
    parse_wrk,
    wrk_command,
    wrk_env,
)
from tests.helpers import auth

pytestmark = pytest.mark.cluster

FULL = os.environ.get("XYNERGY_FULL_FAULTS") == "1"
OUTAGE_SECONDS = 20.0 if FULL else 5.0
LEAD_SECONDS = 2.0
TRAIL_SECONDS = 6.0
RETRY_AFTER_SECONDS = 1
POOL_TIMEOUT_SECONDS = 5.0
# No request may take longer than the pool's wait plus a margin: none hangs.
ANSWER_BOUND_SECONDS = POOL_TIMEOUT_SECONDS + 3.0
RECOVERY_BOUND_SECONDS = 10.0
WRITERS = 6
WRITE_DEADLINE_SECONDS = 60.0
CLIENT_TIMEOUT_SECONDS = 30.0
CONNECTIONS = 8
READ = "/admin/keys?limit=1"
RETRYABLE = {
    HTTPStatus.SERVICE_UNAVAILABLE,
    HTTPStatus.CONFLICT,  # idempotency_in_progress: the first attempt is still settling
}


@dataclass
class Attempt:
    """One HTTP attempt of a write (monotonic seconds)."""

    sent: float
    done: float
    status: int  # 0: no answer (the client's timeout or a dropped connection)
    retry_after: str | None
    code: str | None
    replayed: bool


@dataclass
class Writes:
    """What the writer clients did."""

    attempts: list[Attempt] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)  # titles acknowledged (2xx)
    abandoned: list[str] = field(default_factory=list)  # past WRITE_DEADLINE_SECONDS


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[OwnPostgres]:
    skip_unless_postgres_binaries()
    server = OwnPostgres()
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="module")
def pg_cluster(
    own_postgres: OwnPostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    with dedicated_cluster(
        tmp_path_factory.mktemp("pg-fault"),
        database_name="xynergy_cluster_pg_fault",
        postgres_admin_dsn=own_postgres.admin_dsn,
        extra_env={
            "XYNERGY_RATE_LIMITS": json.dumps(GENEROUS_LIMITS | {"admin": "1000000/hour"}),
            "XYNERGY_DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS": str(RETRY_AFTER_SECONDS),
            "XYNERGY_DATABASE_POOL_TIMEOUT_SECONDS": str(POOL_TIMEOUT_SECONDS),
        },
    ) as running:
        yield running


async def _send(client: httpx.AsyncClient, secret: str, title: str, key: str) -> Attempt:
    sent = time.monotonic()
    try:
        answer = await client.post(
            "/aso-engine/api/content",
            json={"title": title, "author": "pg fault test"},
            headers=auth(secret) | {"Idempotency-Key": key},
        )
    except httpx.TransportError:
        return Attempt(sent, time.monotonic(), 0, None, None, replayed=False)
    code = None
    if answer.status_code >= HTTPStatus.BAD_REQUEST:
        code = str(answer.json().get("error"))
    return Attempt(
        sent,
        time.monotonic(),
        answer.status_code,
        answer.headers.get("Retry-After"),
        code,
        replayed=answer.headers.get("Idempotent-Replayed") == "true",
    )


async def _deliver(
    client: httpx.AsyncClient, secret: str, title: str, key: str, writes: Writes
) -> bool:
    """Send until acknowledged (2xx), retrying as told; False past the deadline or on
    an answer not to retry."""
    deadline = time.monotonic() + WRITE_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        attempt = await _send(client, secret, title, key)
        writes.attempts.append(attempt)
        if HTTPStatus.OK <= attempt.status < HTTPStatus.MULTIPLE_CHOICES:
            return True
        if attempt.status not in RETRYABLE and attempt.status != 0:
            return False  # not to be retried: the assertions below judge it
        await asyncio.sleep(float(attempt.retry_after or RETRY_AFTER_SECONDS))
    return False


async def _writers(base_url: str, secret: str, tag: str, until: float) -> Writes:
    writes = Writes()
    async with httpx.AsyncClient(base_url=base_url, timeout=CLIENT_TIMEOUT_SECONDS) as client:

        async def lane(number: int) -> None:
            n = 0
            while time.monotonic() < until:
                n += 1
                title, key = f"{tag} w{number} n{n}", uuid.uuid4().hex
                if not await _deliver(client, secret, title, key, writes):
                    writes.abandoned.append(title)
                    continue
                writes.completed.append(title)
                # The answer was "lost": the client sends the same write again.
                await _deliver(client, secret, title, key, writes)

        await asyncio.gather(*(lane(number) for number in range(WRITERS)))
    return writes


async def _rows_per_title(database_url: str, tag: str) -> Counter[str]:
    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""), timeout=10)
    try:
        rows = await connection.fetch(
            "SELECT title, count(*) AS n FROM aso_content WHERE title LIKE $1 GROUP BY title",
            tag + " %",
        )
    finally:
        await connection.close()
    return Counter({str(row["title"]): int(row["n"]) for row in rows})


def _describe(statuses: Counter[tuple[int, str | None]]) -> str:
    shown = (f"{status} {code}" if code else str(status) for status, code in statuses)
    return ", ".join(f"{what}: {n}" for what, n in zip(shown, statuses.values(), strict=True))


def _first_2xx_per_replica(cluster: Any, since: float) -> dict[str, float]:
    """Seconds from ``since`` until each replica (directly) answers the read with 2xx."""
    results: dict[str, float] = {}
    headers = admin_headers(cluster)
    with httpx.Client(timeout=CLIENT_TIMEOUT_SECONDS) as client:
        deadline = since + RECOVERY_BOUND_SECONDS * 3
        pending = {replica.name: replica.base_url for replica in cluster.replicas}
        while pending and time.monotonic() < deadline:
            for name, base_url in list(pending.items()):
                try:
                    status = client.get(base_url + READ, headers=headers).status_code
                except httpx.TransportError:
                    continue
                if status == HTTPStatus.OK:
                    results[name] = time.monotonic() - since
                    del pending[name]
            time.sleep(0.05)
    return results


def test_postgres_restart_answers_503_recovers_and_never_duplicates(
    pg_cluster: Any, own_postgres: OwnPostgres
) -> None:
    cluster = pg_cluster
    _, _, secret = tenant_key(cluster, "pg-fault")
    tag = f"pgf-{uuid.uuid4().hex[:8]}"
    total = LEAD_SECONDS + OUTAGE_SECONDS + TRAIL_SECONDS
    until = time.monotonic() + total
    wrk = subprocess.Popen(  # noqa: S603 - Debian's wrk, arguments from the test
        wrk_command(cluster.proxy_url + READ, seconds=total, connections=CONNECTIONS),
        env=wrk_env(admin_headers(cluster)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out: list[Writes] = []
    writer = threading.Thread(
        target=lambda: out.append(asyncio.run(_writers(cluster.proxy_url, secret, tag, until)))
    )
    writer.start()
    try:
        time.sleep(LEAD_SECONDS)
        stopped_at = time.monotonic()
        own_postgres.stop()
        time.sleep(OUTAGE_SECONDS)
        own_postgres.start()  # returns once it accepts connections
        back_at = time.monotonic()
        first_2xx = _first_2xx_per_replica(cluster, back_at)
    finally:
        writer.join(timeout=total + WRITE_DEADLINE_SECONDS * 3)
        wrk_out, wrk_err = wrk.communicate(timeout=WRK_TIMEOUT_SECONDS)
    assert wrk.returncode == 0, wrk_err
    reads = parse_wrk(wrk_out, total)
    writes = out[0]
    rows = asyncio.run(_rows_per_title(cluster.database_url, tag))

    attempts = writes.attempts
    statuses = Counter((a.status, a.code) for a in attempts)
    refused = [a for a in attempts if a.status == HTTPStatus.SERVICE_UNAVAILABLE]
    slowest = max(a.done - a.sent for a in attempts)
    duplicated = {title: n for title, n in rows.items() if n > 1}
    replays = sum(a.replayed for a in attempts)
    print(  # noqa: T201
        f"\nPostgreSQL stopped (-m fast) for {OUTAGE_SECONDS:.0f} s "
        f"(down {back_at - stopped_at:.1f} s) under load via nginx\n"
        f"  reads (wrk -c{CONNECTIONS} {READ}): {reads.describe()}\n"
        f"  writes ({WRITERS} clients, Idempotency-Key, each sent again once acknowledged): "
        f"{len(attempts)} attempts "
        f"[{_describe(statuses)}]; "
        f"slowest {slowest:.2f} s; {len(writes.completed)} acknowledged, "
        f"{len(writes.abandoned)} abandoned, {replays} replays\n"
        f"  rows: {sum(rows.values())} for {len(rows)} titles; "
        f"{len(duplicated)} duplicated {sorted(duplicated)[:3]}\n"
        f"  first 2xx per replica after the restart: "
        f"{', '.join(f'{k} +{v:.2f} s' for k, v in sorted(first_2xx.items()))}"
    )

    # During the outage: 503 with Retry-After, never a 500 (nor a proxy's 502/504).
    assert {a.status for a in attempts} <= {HTTPStatus.CREATED, *RETRYABLE}, statuses
    assert set(reads.statuses) <= {HTTPStatus.OK, HTTPStatus.SERVICE_UNAVAILABLE}, reads.statuses
    assert reads.statuses[HTTPStatus.SERVICE_UNAVAILABLE] > 0  # the outage was seen
    assert refused, "no write met the outage"
    for attempt in refused:
        assert attempt.retry_after == str(RETRY_AFTER_SECONDS), attempt
        assert attempt.code in {"database_unavailable", "database_busy"}, attempt
    assert all(a.status != 0 for a in attempts), "a write went unanswered"
    # None hangs past its timeout.
    assert reads.max_ms / 1000 <= ANSWER_BOUND_SECONDS, reads.describe()
    assert slowest <= ANSWER_BOUND_SECONDS
    # Pools recover by themselves, on every replica.
    assert sorted(first_2xx) == sorted(r.name for r in cluster.replicas), first_2xx
    assert max(first_2xx.values()) <= RECOVERY_BOUND_SECONDS, first_2xx
    assert all(replica.process.poll() is None for replica in cluster.replicas)
    # Every acknowledged write is there exactly once; retries and repeats added nothing.
    assert not writes.abandoned
    assert not duplicated
    assert set(rows) == set(writes.completed)
    assert replays >= len(writes.completed)
