"""The whole platform running in process, with data and keys to aim hostile input at.

``HostilePlatform`` knows a valid request body for every route that takes one
(``SAMPLE_BODIES``) and a real value for every path parameter, so a test can
change one thing at a time and know that the change is what was refused.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.routing import Mount

from tests.corpus import json_bytes
from tests.helpers import auth, issue_key, running
from xynergy.migrations.models import Base
from xynergy.platform.app import walk_routes
from xynergy.platform.auth.scopes import ADMIN_SCOPE, KNOWN_SCOPES, OPERATOR_TENANT_NAME
from xynergy.platform.config import DEFAULT_RATE_LIMITS, Settings
from xynergy.platform.docs_assets import docs_assets
from xynergy.platform.rollups.models import ROLLUP_TABLES
from xynergy.platform.routing import ACTING_TENANT_HEADER, SecureRoute
from xynergy.platform.runtime import Platform
from xynergy.server import SERVICES, build_all_in_one

TENANT_SCOPES = sorted(KNOWN_SCOPES - {ADMIN_SCOPE})
UNLIMITED = {name: "1000000/minute" for name in DEFAULT_RATE_LIMITS}
JSON_HEADERS = {"Content-Type": "application/json"}
ERROR_FIELDS = {"error", "detail", "request_id"}
TEMPLATE_KEY = ("bakery", "food")
MISSING_ID = "f" * 32
_PARAMETER = re.compile(r"\{([^}]+)\}")


def template_body() -> dict[str, Any]:
    return {
        "summary": "Fresh bread, every morning",
        "key_messages": ["Baked today"],
        "default_tactics": ["Tastings"],
        "channel_tactics": {"email": ["Weekly offers"]},
        "utm_medium": {"email": "newsletter"},
        "phases": [{"name": "Launch", "share_percent": 100}],
    }


def _offline_chat() -> dict[str, Any]:
    return {
        "model": "xynergy-offline",
        "messages": [{"role": "user", "content": "Suggest a tagline", "name": "ada"}],
        "stop": ["\n\n"],
        "user": "user-1",
    }


# (method, mounted path) -> a valid body. Every route that takes a body has one:
# test_every_route_with_a_body_has_a_sample keeps this complete.
SAMPLE_BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/aso-engine/api/content"): {
        "title": "Spring launch",
        "body": "<p>Our <b>new</b> app</p>",
        "author": "Ada",
        "target_keywords": ["yoga app"],
    },
    ("PATCH", "/aso-engine/api/content/{content_id}"): {
        "title": "Spring launch, again",
        "body": "<p>Updated</p>",
        "author": "Grace",
        "target_keywords": ["yoga mats"],
    },
    ("POST", "/aso-engine/api/keywords"): {
        "phrase": "yoga mats",
        "locale": "en-US",
        "tags": ["sale"],
        "target_url": "https://shop.example/yoga",
    },
    ("POST", "/aso-engine/api/rankings"): {
        "observations": [
            {
                "keyword_id": "{keyword_id}",
                "engine": "google",
                "locale": "en-US",
                "position": 3,
                "url": "https://shop.example/yoga",
                "observed_on": "2026-01-02",
            }
        ]
    },
    ("POST", "/ai-routing-engine/v1/chat/completions"): _offline_chat(),
    ("POST", "/ai-routing-engine/api/generate/intelligent"): {
        "prompt": "Suggest a tagline",
        "system": "Be brief.",
        "model": "xynergy-offline",
    },
    ("PUT", "/ai-routing-engine/api/budgets"): {"period": "month", "limit_usd": "25.00"},
    ("POST", "/intelligence-gateway/api/forms"): {
        "kind": "beta",
        "name": "Beta list",
        "allowed_origins": ["https://www.acme.example"],
        "webhook_url": "https://hooks.acme.example/intake",
    },
    ("PATCH", "/intelligence-gateway/api/forms/{form_id}"): {
        "name": "Beta list, renamed",
        "allowed_origins": ["https://www.acme.example"],
        "webhook_url": "https://hooks.acme.example/other",
    },
    ("PATCH", "/intelligence-gateway/api/submissions/{submission_id}"): {"status": "reviewed"},
    ("POST", "/platform-dashboard/api/alerts"): {
        "name": "Daily AI spend",
        "kind": "spend",
        "period": "day",
        "threshold": 10.0,
    },
    ("PATCH", "/platform-dashboard/api/alerts/{rule_id}"): {"threshold": 20.0},
    ("POST", "/intelligence-gateway/api/beta-applications"): {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "company": "Engines",
        "website": "https://engines.example",
        "use_case": "Analytical engines for marketing teams.",
        "source": "newsletter",
        "utm_source": "mail",
    },
    ("POST", "/intelligence-gateway/api/contact"): {
        "name": "Grace Hopper",
        "email": "grace@example.com",
        "subject": "Pricing",
        "message": "Please call me back about pricing.",
    },
    ("POST", "/marketing-engine/keywords/research"): {
        "seeds": ["yoga mats"],
        "description": "We sell yoga gear.",
        "locale": "en-US",
        "add_to_tracked": ["yoga mats"],
    },
    ("POST", "/marketing-engine/campaigns/generate"): {
        "name": "Spring",
        "business_type": "saas",
        "industry": "fintech",
        "goals": ["Grow trials"],
        "channels": ["email"],
        "audience": "Finance teams",
        "tone": "confident",
        "starts_on": "2027-01-01",
        "ends_on": "2027-01-30",
        "budget": "1000.00",
    },
    ("POST", "/marketing-engine/templates"): {
        "business_type": TEMPLATE_KEY[0],
        "industry": TEMPLATE_KEY[1],
        "body": template_body(),
    },
    ("PUT", "/marketing-engine/templates/{business_type}/{industry}"): {"body": template_body()},
    ("POST", "/system-runtime/api/workflow-definitions"): {
        "name": "weekly-keywords",
        "description": "Keywords of one locale.",
        "inputs": {"locale": {"type": "string", "description": "e.g. en-US"}},
        "steps": [
            {
                "id": "keywords",
                "operation": "aso.list_keywords",
                "input": {"locale": {"$ref": "/input/locale"}, "limit": 5},
                "description": "One page.",
            }
        ],
    },
    ("POST", "/system-runtime/api/workflows/start"): {
        "definition": "trending-report",
        "input": {"window": 7},
    },
    ("POST", "/system-runtime/api/workflows/{run_id}/signal"): {
        "step_id": "approval",
        "decision": "reject",
        "reason": "Not this quarter.",
    },
    ("POST", "/system-runtime/api/workflow-schedules"): {
        "definition": "trending-report",
        "cron": "0 6 * * 1",
        "timezone": "Europe/Paris",
        "input": {"window": 7},
    },
    ("PATCH", "/system-runtime/api/workflow-schedules/{schedule_id}"): {
        "status": "paused",
        "cron": "30 6 * * 1",
        "timezone": "UTC",
    },
    ("POST", "/system-runtime/api/services/{service}/trigger"): {
        "operation": "intake.stats",
        "input": {},
    },
    ("POST", "/ai-assistant/api/conversations"): {"title": "Launch plan"},
    ("PATCH", "/ai-assistant/api/conversations/{conversation_id}"): {"title": "Renamed"},
    ("POST", "/ai-assistant/api/conversation/message"): {
        "conversation_id": "{conversation_id}",
        "message": "Which keywords should we track?",
    },
    ("POST", "/ai-assistant/api/conversations/{conversation_id}/messages"): {
        "message": "And for the launch?",
    },
    ("POST", "/admin/tenants"): {"name": "initech"},
    ("POST", "/admin/keys"): {"name": "reporting", "scopes": ["content:read"]},
    ("POST", "/admin/keys/{key_id}/rotate"): {"grace_seconds": 60},
    # Browser sign-in, at the root of every app (platform/web_sessions).
    **{
        ("POST", prefix + "/session"): {"api_key": "{api_key}"}
        for prefix in ("", *(f"/{slug}" for slug in SERVICES))
    },
}
# Where NUL is accepted: prompt text (sent to a model, never stored; see
# xynergy.platform.text.RawText), and the names of parameters the OpenAI-compatible
# endpoint ignores (a key replaced by NUL becomes such a parameter).
NUL_ACCEPTED = {
    ("POST", "/ai-routing-engine/v1/chat/completions"): {
        ("messages", 0, "content"),
        ("stop", 0),
        ("messages", 0, "name", None),
        ("stop", None),
        ("user", None),
    },
    ("POST", "/ai-routing-engine/api/generate/intelligent"): {("prompt",), ("system",)},
}


@dataclass(frozen=True)
class Endpoint:
    """One method of one mounted route."""

    method: str
    path: str  # as mounted, with {parameters}
    route: SecureRoute

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, self.path)

    def query_names(self) -> list[str]:
        names: list[str] = []
        stack = [self.route.dependant]
        while stack:
            dependant = stack.pop()
            names.extend(param.alias for param in dependant.query_params)
            stack.extend(dependant.dependencies)
        return sorted(set(names))

    def path_names(self) -> list[str]:
        return _PARAMETER.findall(self.path)

    @property
    def takes_body(self) -> bool:
        return self.route.body_field is not None or "requestBody" in (
            self.route.openapi_extra or {}
        )


def endpoints(root: Starlette) -> Iterator[Endpoint]:
    """Every method of every SecureRoute of every mounted app."""
    for mount in root.routes:
        assert isinstance(mount, Mount)
        assert isinstance(mount.app, FastAPI)
        for route in walk_routes(mount.app.routes):
            if isinstance(route, SecureRoute):
                for method in sorted(route.methods):
                    yield Endpoint(method, mount.path + route.path, route)


@dataclass
class HostilePlatform:
    """Every service in one process; ``headers`` act for tenant acme with every scope."""

    root: Starlette
    client: httpx.AsyncClient
    platform: Platform
    headers: dict[str, str]
    admin: dict[str, str]
    path_values: dict[str, str] = field(default_factory=dict)
    form_public_ids: dict[str, str] = field(default_factory=dict)

    def headers_for(self, path: str) -> dict[str, str]:
        return self.admin if path.startswith("/admin") else self.headers

    def url(self, endpoint: Endpoint, **overrides: str) -> str:
        """The endpoint's path with real values (or ``overrides``, sent as they are)."""
        values = {**self.path_values, **overrides}
        return _PARAMETER.sub(lambda match: values[match.group(1)], endpoint.path)

    def query_for(self, endpoint: Endpoint) -> dict[str, str]:
        """Query parameters the endpoint needs besides those under test."""
        if endpoint.path.endswith("/beta-applications") and endpoint.method != "GET":
            return {"form": self.form_public_ids["beta"]}
        if endpoint.path.endswith("/contact"):
            return {"form": self.form_public_ids["contact"]}
        return {}

    def sample(self, endpoint: Endpoint) -> Any:
        """The valid body of ``endpoint``, with path values filled in."""
        return _filled(SAMPLE_BODIES[endpoint.key], self.path_values)

    async def send(
        self,
        endpoint: Endpoint,
        *,
        url: str | None = None,
        query: dict[str, str] | None = None,
        body: Any = None,
    ) -> httpx.Response:
        """``body`` is sent as ASCII JSON, so lone surrogates arrive as ``\\ud800``."""
        # A URL given with its own query is sent exactly as it is.
        given_query = url is not None and "?" in url
        params = {} if given_query else {**self.query_for(endpoint), **(query or {})}
        content = None if body is None else json_bytes(body)
        headers = {**self.headers_for(endpoint.path), **(JSON_HEADERS if content else {})}
        return await self.client.request(
            endpoint.method,
            url or self.url(endpoint),
            # httpx replaces a URL's own query with any params given, even empty ones.
            params=params or None,
            content=content,
            headers=headers,
        )

    async def settle(self) -> None:
        """Write the usage the AI calls so far recorded (the ledger batches rows)."""
        for mount in self.root.routes:
            engine = getattr(getattr(mount, "app", None), "state", None)
            ai = getattr(engine, "ai", None)
            if ai is not None:
                await ai.ledger.flush()

    async def total_rows(self) -> int:
        """Rows in every table of the platform, counted in SQL."""
        total = 0
        async with self.platform.sessionmaker() as session:
            for table in Base.metadata.sorted_tables:
                if table in ROLLUP_TABLES:
                    # Telemetry, written by the rollups' timer whenever a minute ends.
                    continue
                total += int(await session.scalar(select(func.count()).select_from(table)) or 0)
        return total


def _filled(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _PARAMETER.sub(lambda match: values[match.group(1)], value)
    if isinstance(value, list):
        return [_filled(item, values) for item in value]
    if isinstance(value, dict):
        return {key: _filled(item, values) for key, item in value.items()}
    return value


def string_leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every string in a JSON document, dict keys included (as ``(..., key, None)``)."""
    if isinstance(value, str):
        yield path
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from string_leaves(item, (*path, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield (*path, key, None)
            yield from string_leaves(item, (*path, key))


def replaced(document: Any, path: tuple[Any, ...], text: str) -> Any:
    """A copy of ``document`` with the string at ``path`` (or the key) replaced by ``text``."""
    if len(path) == 2 and path[1] is None:
        return {(text if key == path[0] else key): item for key, item in document.items()}
    if not path:
        return text
    head, rest = path[0], path[1:]
    if isinstance(document, list):
        return [
            replaced(item, rest, text) if i == head else item for i, item in enumerate(document)
        ]
    return {
        key: replaced(item, rest, text) if key == head else item for key, item in document.items()
    }


async def _created(client: httpx.AsyncClient, path: str, body: Any, headers: dict[str, str]) -> Any:
    response = await client.post(path, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def _seed(api: HostilePlatform) -> None:
    """One of everything a path parameter can name."""
    client, headers = api.client, api.headers
    content = await _created(
        client, "/aso-engine/api/content", {"title": "T", "author": "A"}, headers
    )
    keyword = await _created(
        client, "/aso-engine/api/keywords", {"phrase": "seed", "locale": "en-US"}, headers
    )
    forms = {}
    for kind in ("beta", "contact"):
        forms[kind] = await _created(
            client,
            "/intelligence-gateway/api/forms",
            {"kind": kind, "name": kind, "allowed_origins": ["https://www.acme.example"]},
            headers,
        )
    campaign = await _created(
        client,
        "/marketing-engine/campaigns/generate",
        SAMPLE_BODIES[("POST", "/marketing-engine/campaigns/generate")],
        headers,
    )
    await _created(
        client,
        "/marketing-engine/templates",
        {"business_type": TEMPLATE_KEY[0], "industry": TEMPLATE_KEY[1], "body": template_body()},
        headers,
    )
    key = await _created(
        client, "/admin/keys", {"name": "walk", "scopes": ["content:read"]}, api.admin
    )
    conversation = await _created(
        client, "/ai-assistant/api/conversations", {"title": "Seed"}, headers
    )
    schedule = await _created(
        client,
        "/system-runtime/api/workflow-schedules",
        SAMPLE_BODIES[("POST", "/system-runtime/api/workflow-schedules")],
        headers,
    )
    # A finished (cancelled) run: its event stream ends at once instead of following it.
    started = await client.post(
        "/system-runtime/api/workflows/start",
        json=SAMPLE_BODIES[("POST", "/system-runtime/api/workflows/start")],
        headers=headers,
    )
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    cancelled = await client.post(f"/system-runtime/api/workflows/{run_id}/cancel", headers=headers)
    assert cancelled.status_code == 200, cancelled.text
    await api.settle()
    api.form_public_ids = {kind: form["public_id"] for kind, form in forms.items()}
    api.path_values = {
        "content_id": content["id"],
        "keyword_id": keyword["id"],
        "form_id": forms["beta"]["id"],
        "submission_id": MISSING_ID,
        "rule_id": MISSING_ID,
        "public_id": forms["beta"]["public_id"],
        "campaign_id": campaign["id"],
        "business_type": TEMPLATE_KEY[0],
        "industry": TEMPLATE_KEY[1],
        "key_id": key["key"]["id"],
        "schedule_id": schedule["id"],
        "conversation_id": conversation["id"],
        # The seeded conversation has no proposed action: its routes answer 404.
        "action_id": MISSING_ID,
        "run_id": run_id,
        # A service whose catalogue operations may be triggered.
        "service": "intelligence-gateway",
        "period": "month",
        # The docs pages' static files (platform/docs_assets.py).
        "digest": docs_assets()["docs.js"].digest,
        "name": "docs.js",
        # What POST /session exchanges for a cookie: the tenant key itself.
        "api_key": api.headers["Authorization"].removeprefix("Bearer "),
    }


@asynccontextmanager
async def hostile_platform(settings: Settings) -> AsyncIterator[HostilePlatform]:
    """Every service running, seeded, with a tenant key and an operator admin key."""
    root = build_all_in_one(settings)
    async with running(root) as client:
        platform: Platform = root.state.platform
        tenant_id, tenant_key = await issue_key(platform, tenant="acme", scopes=TENANT_SCOPES)
        _, admin_key = await issue_key(platform, tenant=OPERATOR_TENANT_NAME, scopes=[ADMIN_SCOPE])
        admin = {**auth(admin_key.secret), ACTING_TENANT_HEADER: tenant_id}
        api = HostilePlatform(root, client, platform, auth(tenant_key.secret), admin)
        await _seed(api)
        yield api
