"""A write that fails transiently is retried or answered 503, never silently lost.

Every POST/PUT/PATCH/DELETE route of the all-in-one app is called with a valid
body and key while one commit of the request fails the way an outage makes it
fail (``commit_faults.CommitFaults``): the first write commit, then the second,
and so on until the request makes no more. Each answer must be

- a 503 with ``Retry-After`` in the platform's error shape (OpenAI's under ``/v1``),
  or a 2xx whose failed writes were written again by a later commit of the same
  request (an internal retry) -- never a 2xx that lost them, a 500, or a hang;
- after a 503, the same request (same ``Idempotency-Key``) with the database
  healthy succeeds, and the rows the faulted request and its retry leave behind
  are exactly those one healthy request leaves (no partial write kept, no
  duplicate);
- a repeat with the same ``Idempotency-Key`` replays the stored answer.

Writes off the request path (write-behind batches) are covered at the end.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from starlette.routing import Mount

from tests.guards.commit_faults import IDEMPOTENCY_TABLE, CommitFaults, FaultPlan, row_counts
from tests.guards.write_routes import (
    EXCLUDED,
    NO_REQUEST_PATH_WRITES,
    OWN_IDEMPOTENCY,
    REPEAT_IS_NEW,
    WRITE_CASES,
    Prepared,
    prepare_platform,
    unique,
)
from tests.helpers import issue_key
from tests.platform.hostile import UNLIMITED, HostilePlatform, hostile_platform
from xynergy.platform.app import walk_routes
from xynergy.platform.config import Settings
from xynergy.platform.idempotency import REPLAYED_HEADER
from xynergy.platform.routing import SecureRoute
from xynergy.platform.runtime import Platform
from xynergy.platform.tenancy.models import ApiKey
from xynergy.server import build_all_in_one

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PLATFORM_SHAPE = {"error", "detail", "request_id"}
# A request still unanswered after this long is a hang.
REQUEST_TIMEOUT_SECONDS = 20.0
# A request making more write commits than this is a loop, not a unit of work.
MAX_COMMITS_PER_REQUEST = 12
# Outcomes of a failed idempotency-record write are settled in the background
# after database_unavailable_retry_after_seconds: replays wait at most this long.
REPLAY_DEADLINE_SECONDS = 10.0
# Longer than any test: only the test's own flushes write last_used_at.
NEVER_FLUSH_SECONDS = 3600.0


@pytest.fixture
def settings(
    make_settings: Callable[..., Settings], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    monkeypatch.setenv("XYNERGY_INTAKE_RATE_PER_IP", UNLIMITED["public"])
    return make_settings(
        database_url=database_url,
        rate_limits=UNLIMITED,
        database_unavailable_retry_after_seconds=1,
        database_busy_retry_after_seconds=1,
    )


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[HostilePlatform]:
    async with hostile_platform(settings) as started:
        await prepare_platform(started)
        yield started


def write_routes(settings: Settings) -> dict[tuple[str, str], bool]:
    """Every write route of the all-in-one app: whether it takes an Idempotency-Key."""
    routes: dict[tuple[str, str], bool] = {}
    for mount in build_all_in_one(settings).routes:
        assert isinstance(mount, Mount)
        assert isinstance(mount.app, FastAPI)
        paths = mount.app.openapi()["paths"]
        for route in walk_routes(mount.app.routes):
            if not isinstance(route, SecureRoute):
                continue
            for method in sorted(route.methods & WRITE_METHODS):
                operation = paths.get(route.path, {}).get(method.lower(), {})
                headers = {
                    p["name"] for p in operation.get("parameters", []) if p["in"] == "header"
                }
                routes[(method, mount.path + route.path)] = "Idempotency-Key" in headers
    return routes


def test_every_write_route_has_a_case_or_a_reason(settings: Settings) -> None:
    walked = set(write_routes(settings))
    assert walked == set(WRITE_CASES) | set(EXCLUDED), {
        "without a case": sorted(walked - set(WRITE_CASES) - set(EXCLUDED)),
        "case of no route": sorted((set(WRITE_CASES) | set(EXCLUDED)) - walked),
    }
    assert not set(WRITE_CASES) & set(EXCLUDED)


async def send(api: HostilePlatform, request: Prepared) -> httpx.Response:
    api.client.cookies.clear()  # a sign-in's cookie must not ride along
    async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
        return await api.client.request(
            request.method,
            request.url,
            headers=request.headers,
            json=request.json,
            content=request.content,
            params=request.params,
        )


def unavailable_problem(response: httpx.Response) -> str | None:
    """What is wrong with a 503 answer (None: a proper one)."""
    retry_after = response.headers.get("Retry-After", "")
    if not retry_after.isdigit():
        return f"503 without a Retry-After: {dict(response.headers)}"
    body = response.json()
    if isinstance(body.get("error"), dict):  # OpenAI's shape, under /v1
        return None if {"message", "type", "code"} <= set(body["error"]) else body
    if set(body) != PLATFORM_SHAPE:
        return f"503 not in the platform's shape: {body}"
    if body["request_id"] != response.headers.get("x-request-id"):
        return f"503 with another request id: {body}"
    return None


def faulted_problem(response: httpx.Response, plan: FaultPlan) -> str | None:
    """What is wrong with the answer to a request one of whose commits failed."""
    status = response.status_code
    if status == 503:
        return unavailable_problem(response)
    if 200 <= status < 300:
        lost = plan.failed_tables - plan.rewritten_tables - {IDEMPOTENCY_TABLE}
        if lost:
            return f"{status} although the writes to {sorted(lost)} failed and were not retried"
        return None
    return f"{status} (not 2xx, not 503): {response.text[:300]}"


@dataclasses.dataclass
class RouteReport:
    route: tuple[str, str]
    commits: int = 0
    outcomes: list[str] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {table: after[table] - before[table] for table in after if after[table] != before[table]}


async def exercise(
    api: HostilePlatform,
    faults: CommitFaults,
    route: tuple[str, str],
    takes_key: bool,
    replays: list[tuple[tuple[str, str], Prepared, int]],
) -> RouteReport:
    """Fail each write commit of the route's request in turn (see the module docstring)."""
    report = RouteReport(route)
    prepare = WRITE_CASES[route]
    deltas: dict[int, dict[str, int]] = {}
    healthy: dict[str, int] | None = None
    for fail_at in range(1, MAX_COMMITS_PER_REQUEST + 2):
        request = await prepare(api, unique())
        if not takes_key:
            headers = {k: v for k, v in request.headers.items() if k != "Idempotency-Key"}
            request = dataclasses.replace(request, headers=headers, idempotent=False)
        before = await row_counts(api)
        try:
            with faults.armed(fail_at) as plan:
                response = await send(api, request)
        except TimeoutError:
            report.problems.append(f"commit {fail_at} failed: no answer (a hang)")
            return report
        if not plan.fired:
            # The request made fewer write commits: this was a healthy run.
            report.commits = fail_at - 1
            if not 200 <= response.status_code < 300:
                report.problems.append(f"healthy: {response.status_code} {response.text[:300]}")
                return report
            if request.settle is not None:
                await request.settle()
            healthy = _delta(before, await row_counts(api))
            if request.idempotent:
                replays.append((route, request, response.status_code))
            if request.cleanup is not None:
                await request.cleanup()
            break
        report.outcomes.append(
            f"{response.status_code} {sorted(plan.failed_tables)}->{sorted(plan.rewritten_tables)}"
        )
        problem = faulted_problem(response, plan)
        if problem:
            report.problems.append(f"commit {fail_at} ({sorted(plan.failed_tables)}): {problem}")
            continue
        final = response
        if response.status_code == 503:
            final = await send(api, request)
            if not 200 <= final.status_code < 300:
                report.problems.append(
                    f"commit {fail_at}: the retry after 503 answered {final.status_code} "
                    f"{final.text[:300]}"
                )
                continue
        if request.settle is not None:
            await request.settle()
        deltas[fail_at] = _delta(before, await row_counts(api))
        if request.idempotent:
            replays.append((route, request, final.status_code))
        if request.cleanup is not None:
            await request.cleanup()
    else:
        report.problems.append(f"more than {MAX_COMMITS_PER_REQUEST} write commits")
    if healthy is not None:
        for fail_at, delta in deltas.items():
            if route in REPEAT_IS_NEW:
                missing = {t: n for t, n in healthy.items() if delta.get(t, 0) < n}
                if missing:
                    report.problems.append(f"commit {fail_at} failed, then retried: {missing} lost")
            elif delta != healthy:
                report.problems.append(
                    f"commit {fail_at} failed, then retried: rows changed by {delta}, "
                    f"one healthy request changes {healthy}"
                )
    return report


async def replay_all(
    api: HostilePlatform, replays: list[tuple[tuple[str, str], Prepared, int]]
) -> list[str]:
    """Each keyed request sent again must replay its stored answer, writing nothing."""
    problems: list[str] = []
    before = await row_counts(api)
    deadline = time.monotonic() + REPLAY_DEADLINE_SECONDS
    for route, request, status in replays:
        while True:
            again = await send(api, request)
            # 409 idempotency_in_progress: the outcome is still being settled in the
            # background (its first write failed); come back as Retry-After says.
            if again.status_code != 409 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        replayed = route in OWN_IDEMPOTENCY or again.headers.get(REPLAYED_HEADER) == "true"
        if again.status_code != status or not replayed:
            problems.append(f"{route}: the repeat answered {again.status_code}, not a replay")
    after = await row_counts(api)
    if after != before:
        problems.append(f"repeats with the same Idempotency-Key wrote {_delta(before, after)}")
    return problems


async def test_every_write_route_is_retried_or_503_never_lost(
    api: HostilePlatform, settings: Settings
) -> None:
    faults = CommitFaults(api.platform.engine)
    faults.install()
    takes_key = write_routes(settings)
    replays: list[tuple[tuple[str, str], Prepared, int]] = []
    reports: list[RouteReport] = []
    try:
        for route in sorted(WRITE_CASES):
            started = time.monotonic()
            reports.append(await exercise(api, faults, route, takes_key[route], replays))
            reports[-1].seconds = time.monotonic() - started
        replay_problems = await replay_all(api, replays)
    finally:
        faults.remove()
        for r in reports:
            print(f"{r.seconds:6.2f}s {r.commits} commits {r.outcomes} {r.route}")  # noqa: T201
    problems = [f"{r.route}: {p}" for r in reports for p in r.problems] + replay_problems
    assert not problems, "\n".join(problems)
    faulted = [r for r in reports if r.commits]
    # Every route but those that only read on the request path had a commit failed.
    no_writes = sorted(r.route for r in reports if not r.commits)
    assert no_writes == sorted(NO_REQUEST_PATH_WRITES), no_writes
    assert len(faulted) >= len(WRITE_CASES) - len(NO_REQUEST_PATH_WRITES)


class TestWriteBehind:
    """Writes off the request path: a failed batch stays queued for the next flush.

    The usage ledger and the rollups share ``platform.write_behind.WriteBehind``,
    whose retry is tested in ``tests/ai_routing/usage/test_ledger.py``
    (``test_a_failed_write_keeps_the_events_for_the_next_flush``,
    ``test_the_writer_survives_failures_and_retries``); its overflow is counted in
    a metric (``test_rows_the_database_refuses_are_dropped_alone`` and the queue
    bound tests there). The keys' ``last_used_at`` batch is tested here.
    """

    async def test_a_failed_last_used_flush_is_written_by_the_next(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        settings = make_settings(
            database_url=database_url, key_last_used_flush_seconds=NEVER_FLUSH_SECONDS
        )
        platform = await Platform.open(settings)
        try:
            _, issued = await issue_key(platform, scopes=["content:read"])
            await platform.key_verifier.verify(issued.secret)
            faults = CommitFaults(platform.engine)
            faults.install()
            try:
                with faults.armed(1) as plan, pytest.raises(DBAPIError):
                    await platform.key_verifier.flush_last_used()
            finally:
                faults.remove()
            unwritten = await last_used(platform, issued.key.id)
            await platform.key_verifier.flush_last_used()
            written = await last_used(platform, issued.key.id)
        finally:
            await platform.close()
        assert plan.failed_tables == {"api_keys"}
        assert unwritten is None
        assert written is not None


async def last_used(platform: Platform, key_id: str) -> datetime | None:
    async with platform.sessionmaker() as session:
        return await session.scalar(select(ApiKey.last_used_at).where(ApiKey.id == key_id))
