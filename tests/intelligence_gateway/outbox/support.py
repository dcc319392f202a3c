"""A local webhook receiver and seeding helpers for the outbox tests.

The receiver is an aiohttp server on a loopback port. It verifies every
signature, de-duplicates by ``X-Xynergy-Delivery`` (as a real receiver must), and
can be taken down, either answering 503 or refusing connections, and brought
back up on the same port.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from datetime import date
from types import TracebackType
from typing import Any, Self

from aiohttp import web
from sqlalchemy import select
from yarl import URL

from tests.helpers import ensure_tenant
from xynergy.intelligence_gateway.config import IntakeSettings
from xynergy.intelligence_gateway.models import IntakeForm, Submission
from xynergy.intelligence_gateway.outbox.enqueue import enqueue_webhook
from xynergy.intelligence_gateway.outbox.resolver import INTAKE_FORM, resolve_forms
from xynergy.platform.db.base import new_id
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.outbox import (
    BREAKER,
    OutboxDispatcher,
    OutboxMessage,
    OutboxResolvers,
    breaker_destination,
)
from xynergy.platform.outbox.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    verify_signature,
)
from xynergy.platform.runtime import Platform

SECRET = "whsec-test-" + "s" * 32


def fast_outbox(**overrides: Any) -> dict[str, Any]:
    """Platform outbox settings with tiny poll and backoff times, loopback receivers allowed."""
    values: dict[str, Any] = {
        "outbox_poll_seconds": 0.05,
        "outbox_backoff_base_seconds": 0.01,
        "outbox_backoff_max_seconds": 0.05,
        "outbox_lease_seconds": 30.0,
        "outbox_webhook_timeout_seconds": 2.0,
        "outbox_allow_private_addresses": True,
    }
    values.update(overrides)
    return values


def fast_intake(**overrides: Any) -> IntakeSettings:
    """Intake settings for the webhook tests (loopback URLs need the platform's
    ``outbox_allow_private_addresses``, which :func:`fast_outbox` sets)."""
    return IntakeSettings(**overrides)


def dispatcher_for(platform: Platform, **outbox: Any) -> OutboxDispatcher:
    """A dispatcher of the intake's messages on ``platform``, with fast outbox settings."""
    resolvers = OutboxResolvers()
    resolvers.register(INTAKE_FORM, resolve_forms)
    return OutboxDispatcher(
        settings=platform.settings.model_copy(update=fast_outbox(**outbox)),
        sessionmaker=platform.sessionmaker,
        http=platform.http,
        breakers=platform.breakers,
        metrics=platform.metrics,
        resolvers=resolvers,
    )


def submission_id(row: OutboxMessage) -> str:
    """The submission an intake message reports (named in its payload)."""
    submission: dict[str, Any] = json.loads(row.payload)["submission"]
    return str(submission["id"])


class WebhookReceiver:
    """Records deliveries; ``delivered`` maps each delivery id to its first payload."""

    def __init__(self, secret: str = SECRET) -> None:
        self.secret = secret
        self.status: int | None = None  # answer every request with this (e.g. 503)
        self.delay_seconds = 0.0
        self.gate: asyncio.Event | None = None  # when set to one, hold requests until set
        self.requests = 0
        self.broken_requests = 0
        self.bad_signatures = 0
        self.duplicates = 0
        self.concurrent_duplicates = 0
        self.held = 0  # requests that have waited at the gate
        self.delivered: dict[str, dict[str, Any]] = {}
        self.hosts: list[str] = []
        self.signatures: list[str] = []  # every X-Xynergy-Signature received, in order
        self.events: list[str] = []
        self._in_flight: set[str] = set()
        self._port = 0
        self._runner: web.AppRunner | None = None
        self._refusing: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}/hooks/xynergy"

    @property
    def broken_url(self) -> str:
        """A path of this receiver that always answers 503 (a misconfigured hook)."""
        return f"http://127.0.0.1:{self._port}/hooks/broken"

    @property
    def port(self) -> int:
        return self._port

    async def __aenter__(self) -> Self:
        await self._listen()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.gate is not None:
            self.gate.set()
        await self._close()
        if self._refusing is not None:
            self._refusing.close()

    async def refuse(self) -> None:
        """Stop listening; connections to the port are refused until up()."""
        await self._close()
        self._refusing = self._bound_socket()

    async def up(self) -> None:
        """Answer normally again (listening again if refusing)."""
        self.status = None
        if self._refusing is not None:
            self._refusing.close()
            self._refusing = None
            await self._listen()

    def _bound_socket(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        self._port = sock.getsockname()[1]
        return sock

    async def _listen(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks/xynergy", self._handle)
        app.router.add_post("/hooks/broken", self._broken)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=0.1
        )
        await self._runner.setup()
        await web.SockSite(self._runner, self._bound_socket()).start()

    async def _close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _broken(self, request: web.Request) -> web.Response:
        await request.read()
        self.broken_requests += 1
        return web.Response(status=503, text="this hook is broken")

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests += 1
        self.signatures.append(request.headers.get(SIGNATURE_HEADER, ""))
        if self.status is not None:
            return web.Response(status=self.status, text="receiver is down")
        if not verify_signature(body, request.headers.get(SIGNATURE_HEADER), self.secret):
            self.bad_signatures += 1
            return web.Response(status=400, text="bad signature")
        delivery_id = request.headers[DELIVERY_HEADER]
        if delivery_id in self._in_flight:
            self.concurrent_duplicates += 1
        self._in_flight.add(delivery_id)
        try:
            if self.gate is not None:
                self.held += 1
                await self.gate.wait()
            if self.delay_seconds:
                await asyncio.sleep(self.delay_seconds)
        finally:
            self._in_flight.discard(delivery_id)
        payload = json.loads(body)
        assert payload["id"] == delivery_id
        self.hosts.append(request.headers.get("Host", ""))
        self.events.append(request.headers.get(EVENT_HEADER, ""))
        if delivery_id in self.delivered:
            self.duplicates += 1
        else:
            self.delivered[delivery_id] = payload
        return web.Response(status=204)

    def delivered_submissions(self) -> list[str]:
        """The submission id of every distinct delivery."""
        return [payload["submission"]["id"] for payload in self.delivered.values()]


async def create_form(platform: Platform, *, webhook_url: str | None, tenant: str = "acme") -> str:
    tenant_id = await ensure_tenant(platform, tenant)
    async with unit_of_work(platform.sessionmaker) as session:
        form = IntakeForm(
            tenant_id=tenant_id,
            public_id="pub_" + new_id(),
            kind="contact",
            name="Contact us",
            allowed_origins=["https://acme.example"],
            webhook_url=webhook_url,
            webhook_secret=SECRET,
        )
        session.add(form)
        await session.flush()
        return form.id


def new_submission(form: IntakeForm, number: int) -> Submission:
    return Submission(
        id=new_id(),
        tenant_id=form.tenant_id,
        form_id=form.id,
        kind=form.kind,
        status="new",
        email=f"person{number}@example.com",
        name=f"Person {number}",
        company="Acme",
        website=None,
        subject="Hello",
        body=f"Message number {number}",
        source="landing",
        utm={"utm_source": "test"},
        spam_reasons=[],
        content_hash="0" * 64,
        client_ip_hash="0" * 64,
        created_day=date.today(),
    )


async def submit(platform: Platform, form_id: str, count: int) -> list[str]:
    """Create ``count`` submissions, each with its outbox row in one transaction."""
    ids: list[str] = []
    for number in range(count):
        async with unit_of_work(platform.sessionmaker) as session:
            form = await session.get(IntakeForm, form_id)
            assert form is not None
            submission = new_submission(form, number)
            session.add(submission)
            await enqueue_webhook(session, form=form, submission=submission)
            ids.append(submission.id)
    return ids


async def breaker_state(platform: Platform, form_id: str) -> str:
    """The state of the breaker guarding ``form_id``'s webhook destination."""
    async with unit_of_work(platform.sessionmaker) as session:
        form = await session.get(IntakeForm, form_id)
        assert form is not None
        assert form.webhook_url is not None
        destination = breaker_destination(form.tenant_id, URL(form.webhook_url))
    return await platform.breakers.state(BREAKER, destination)


async def outbox_rows(platform: Platform) -> list[OutboxMessage]:
    async with unit_of_work(platform.sessionmaker) as session:
        rows = await session.scalars(select(OutboxMessage).order_by(OutboxMessage.created_at))
        return list(rows)


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def wait_all_delivered(platform: Platform, timeout: float = 10.0) -> list[OutboxMessage]:
    """The outbox rows, once every one is marked delivered."""
    async with asyncio.timeout(timeout):
        while True:
            rows = await outbox_rows(platform)
            if all(row.delivered_at is not None for row in rows):
                return rows
            await asyncio.sleep(0.02)
