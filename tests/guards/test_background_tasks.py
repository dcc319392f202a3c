"""Every task the platform starts is named, and none outlives shutdown (invariant 8).

A task factory on the test's event loop records every task made while the
all-in-one platform opens, serves some traffic (several services, an AI call,
an intake submission with its webhook, a workflow run) and closes. The review's
defects were unnamed module-level tasks nothing stopped: a ``Task-N`` still
pending after shutdown, that no log line or task dump can trace back.

Xynergy's tasks are told from the libraries' by the code they run (the
coroutine's file is under ``src/xynergy``). Tasks ``asyncio.gather`` and
``asyncio.wait_for`` make for the coroutines they are given are the caller's
own awaits, cancelled with it, not background work: they need no name, but they
must be finished after shutdown like every other.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

import xynergy
from tests.ai_routing.gateway import generous_limits
from tests.helpers import auth
from tests.intelligence_gateway.outbox.support import WebhookReceiver, fast_outbox
from tests.system_runtime.support import Harness, harness, op, runtime_settings
from xynergy.ai_routing.app import SLUG as AI_ROUTING
from xynergy.intelligence_gateway.app import SLUG as INTAKE
from xynergy.platform.config import Settings

PACKAGE = Path(xynergy.__file__).resolve().parent
ASYNCIO = Path(asyncio.__file__).resolve().parent
# asyncio helpers that wrap the coroutines they are given in tasks they await.
AWAITING_HELPERS = frozenset({"gather", "wait_for", "as_completed"})
DEFAULT_NAME_PREFIX = "Task-"
SCOPES = (
    "workflows:read",
    "workflows:write",
    "content:read",
    "content:write",
    "keywords:read",
    "keywords:write",
    "ai:generate",
    "intake:admin",
    "intake:read",
    "analytics:read",
    "ai:usage",
    "campaigns:read",
    "metrics:read",
)


@dataclass
class Made:
    task: asyncio.Task[Any]
    code: str  # where the coroutine is defined: file:line function
    ours: bool  # the coroutine is xynergy's
    awaited_in_place: bool  # made by gather/wait_for for its caller

    def where(self) -> str:
        return f"{self.task.get_name()!r} running {self.code}"


class TaskRecorder:
    """A task factory that records every task the loop makes (chaining any factory
    already installed)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.made: list[Made] = []
        self._loop = loop
        self._previous = loop.get_task_factory()

    def __call__(
        self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any
    ) -> asyncio.Task[Any]:
        if self._previous is not None:
            task = cast(asyncio.Task[Any], self._previous(loop, coro, **kwargs))
        else:
            task = asyncio.Task(coro, loop=loop, **kwargs)
        code = getattr(coro, "cr_code", None)
        filename = Path(code.co_filename).resolve() if code is not None else None
        self.made.append(
            Made(
                task=task,
                code=f"{filename}:{code.co_firstlineno} {code.co_name}" if code else repr(coro),
                ours=filename is not None and filename.is_relative_to(PACKAGE),
                awaited_in_place=_made_by_awaiting_helper(),
            )
        )
        return task

    def ours(self) -> list[Made]:
        return [made for made in self.made if made.ours]

    @contextmanager
    def installed(self) -> Iterator[TaskRecorder]:
        self._loop.set_task_factory(self)  # type: ignore[arg-type]
        try:
            yield self
        finally:
            self._loop.set_task_factory(self._previous)


def _made_by_awaiting_helper() -> bool:
    """Whether the task being made comes from gather/wait_for (the asyncio frames
    between the factory and the code that asked for the task)."""
    frame = sys._getframe(2)  # past the factory and this function
    while frame is not None and Path(frame.f_code.co_filename).resolve().is_relative_to(ASYNCIO):
        if frame.f_code.co_name in AWAITING_HELPERS:
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


async def drive_traffic(h: Harness, receiver: WebhookReceiver) -> None:
    """Requests to several services, an AI call, an intake submission and a workflow."""
    _, _, secret = await h.key(scopes=SCOPES)
    headers = auth(secret)
    tracked = await h.client.post(
        "/aso-engine/api/keywords",
        json={"phrase": "trail shoes", "locale": "en-US"},
        headers=headers,
    )
    assert tracked.status_code == 201, tracked.text
    listed = await h.client.get("/aso-engine/api/keywords", headers=headers)
    assert listed.status_code == 200, listed.text
    chat = await h.client.post(
        f"/{AI_ROUTING}/v1/chat/completions",
        json={"model": "xynergy-offline", "messages": [{"role": "user", "content": "hello"}]},
        headers=headers,
    )
    assert chat.status_code == 200, chat.text
    analytics = await h.client.get("/marketing-engine/analytics/performance", headers=headers)
    assert analytics.status_code == 200, analytics.text
    status = await h.client.get("/platform-dashboard/api/status", headers=headers)
    assert status.status_code in (200, 403), status.text

    origin = "https://www.acme.example"
    form = await h.client.post(
        f"/{INTAKE}/api/forms",
        json={
            "kind": "beta",
            "name": "Beta list",
            "allowed_origins": [origin],
            "webhook_url": receiver.url,
        },
        headers=headers,
    )
    assert form.status_code == 201, form.text
    receiver.secret = form.json()["webhook_secret"]
    public_id = form.json()["public_id"]
    token = await h.client.get(f"/{INTAKE}/api/forms/{public_id}/token")
    assert token.status_code == 200, token.text
    submitted = await h.client.post(
        f"/{INTAKE}/api/beta-applications",
        params={"form": public_id},
        json={
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "use_case": "Analytical engines for marketing teams.",
            "form_token": token.json()["token"],
        },
        headers={"Origin": origin},
    )
    assert submitted.status_code == 202, submitted.text

    await h.define("guarded-flow", [op("one", "test.sleep", ms=10)])
    run_id = await h.started("guarded-flow")
    assert (await h.wait_for(run_id))["status"] == "succeeded"
    async with asyncio.timeout(10):
        while not receiver.delivered:
            await asyncio.sleep(0.02)


async def run_the_platform(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> TaskRecorder:
    """Open the all-in-one platform with the recorder installed, serve, close."""
    monkeypatch.setenv("XYNERGY_INTAKE_FORM_TOKEN_MIN_FILL_SECONDS", "0")
    recorder = TaskRecorder(asyncio.get_running_loop())
    async with WebhookReceiver() as receiver:
        with recorder.installed():
            async with harness(settings, runtime=runtime_settings()) as h:
                await drive_traffic(h, receiver)
    return recorder


@pytest.fixture(params=["embedded", pytest.param("redis", marks=pytest.mark.redis)])
def settings(request: pytest.FixtureRequest, make_settings: Callable[..., Settings]) -> Settings:
    """Embedded backends, and with Redis (its listeners are tasks of their own)."""
    values: dict[str, Any] = {"rate_limits": generous_limits(), **fast_outbox()}
    if request.param == "redis":
        values["redis_url"] = request.getfixturevalue("redis_url")
        values["redis_key_prefix"] = request.getfixturevalue("redis_prefix")
    return make_settings(**values)


async def test_every_platform_task_is_named_and_stopped_at_shutdown(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = await run_the_platform(settings, monkeypatch)
    ours = recorder.ours()
    # A recorder that saw nothing would pass everything below.
    names = {made.task.get_name() for made in ours}
    expected = {"log-flusher", "platform-outbox", "webhook", "runtime-record-writer"}
    if settings.redis_url is not None:
        expected |= {"cache-tracking", "keys-invalidation", "ai-flight-done"}
    assert expected <= names, sorted(names)

    unnamed = [
        made.where()
        for made in ours
        if not made.awaited_in_place and made.task.get_name().startswith(DEFAULT_NAME_PREFIX)
    ]
    assert unnamed == [], "tasks started without name=: " + "; ".join(unnamed)
    pending = [made.where() for made in ours if not made.task.done()]
    assert pending == [], "still running after shutdown: " + "; ".join(pending)
