"""A running Intelligence Gateway, with intake forms created directly in the database."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from tests.helpers import ensure_tenant, running
from xynergy.intelligence_gateway.app import create_intelligence_gateway_app
from xynergy.intelligence_gateway.config import IntakeSettings
from xynergy.intelligence_gateway.form_tokens import FormTokens
from xynergy.intelligence_gateway.models import IntakeForm, Submission
from xynergy.platform.config import Settings
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.outbox import OutboxMessage
from xynergy.platform.runtime import Platform

BETA = "/api/beta-applications"
CONTACT = "/api/contact"
ORIGIN = "https://www.acme.example"
_MAX_ROWS = 1000


@dataclass
class IntakeApi:
    """A running gateway; forms are made with ``create_form``, rows read back in SQL."""

    app: FastAPI
    client: httpx.AsyncClient

    @property
    def platform(self) -> Platform:
        platform: Platform = self.app.state.platform
        return platform

    async def create_form(
        self,
        *,
        kind: str = "beta",
        tenant: str = "acme",
        allowed_origins: Sequence[str] = (ORIGIN,),
        active: bool = True,
        webhook_url: str | None = None,
    ) -> IntakeForm:
        tenant_id = await ensure_tenant(self.platform, tenant)
        form = IntakeForm(
            tenant_id=tenant_id,
            public_id="frm_" + secrets.token_urlsafe(16),
            kind=kind,
            name=f"{kind} form",
            allowed_origins=list(allowed_origins),
            webhook_url=webhook_url,
            webhook_secret="whsec_test" if webhook_url else None,
            active=active,
        )
        async with unit_of_work(self.platform.sessionmaker) as session:
            session.add(form)
        return form

    def token(self, public_id: str, *, age_seconds: float = 60.0) -> str:
        """A form token as the app would have issued it ``age_seconds`` ago."""
        tokens = FormTokens.from_settings(
            self.app.state.intake,
            self.platform.internal_tokens.secrets,
            leeway_seconds=self.platform.settings.internal_token_leeway_seconds,
        )
        return tokens.issue(public_id, now=time.time() - age_seconds)

    def beta(self, form: IntakeForm, **fields: Any) -> dict[str, Any]:
        """A valid beta application body for ``form``, with ``fields`` changed."""
        body = {
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "use_case": "Analytical engines for marketing teams.",
            "form_token": self.token(form.public_id),
        }
        return {**body, **fields}

    def contact(self, form: IntakeForm, **fields: Any) -> dict[str, Any]:
        """A valid contact message body for ``form``, with ``fields`` changed."""
        body = {
            "name": "Grace Hopper",
            "email": "grace@example.com",
            "message": "Please call me back about pricing.",
            "form_token": self.token(form.public_id),
        }
        return {**body, **fields}

    async def post(
        self, path: str, form: IntakeForm, body: Any, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return await self.client.post(
            path, params={"form": form.public_id}, json=body, headers=headers
        )

    async def count(self, form: IntakeForm | None = None) -> int:
        """Submission rows (of ``form``, or all), counted in SQL."""
        query = select(func.count()).select_from(Submission)
        if form is not None:
            query = query.where(Submission.form_id == form.id)
        async with self.platform.sessionmaker() as session:
            return int(await session.scalar(query) or 0)

    async def rows(self, form: IntakeForm, **where: Any) -> list[Submission]:
        query = (
            select(Submission)
            .where(Submission.form_id == form.id)
            .filter_by(**where)
            .order_by(Submission.created_at, Submission.id)
            .limit(_MAX_ROWS)
        )
        async with self.platform.sessionmaker() as session:
            return list((await session.scalars(query)).all())

    async def outbox(self) -> list[OutboxMessage]:
        """Every webhook notification, oldest first."""
        query = select(OutboxMessage).order_by(OutboxMessage.created_at).limit(_MAX_ROWS)
        async with self.platform.sessionmaker() as session:
            return list((await session.scalars(query)).all())


@asynccontextmanager
async def intake_api(
    settings: Settings, intake: IntakeSettings | None = None, *, client_ip: str = "127.0.0.1"
) -> AsyncIterator[IntakeApi]:
    """Start the gateway (``intake`` defaults to IntakeSettings()) and yield its API."""
    app = create_intelligence_gateway_app(settings, intake=intake or IntakeSettings())
    async with running(app, client_ip=client_ip) as client:
        yield IntakeApi(app, client)
