"""A fresh valid request for every write route, for the transient-write guard.

``WRITE_CASES`` knows, for every POST/PUT/PATCH/DELETE route of the all-in-one
app, how to make a fresh valid request (new unique names, a new resource to
change or delete), built on ``tests/platform/hostile.py``'s sample bodies and seed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from tests.platform.hostile import SAMPLE_BODIES, HostilePlatform, template_body
from xynergy.ai_assistant.models import Message
from xynergy.aso_engine.models import Keyword

__all__ = [
    "EXCLUDED",
    "NO_REQUEST_PATH_WRITES",
    "OWN_IDEMPOTENCY",
    "REPEAT_IS_NEW",
    "WRITE_CASES",
    "Prepared",
    "prepare_platform",
    "unique",
]


@dataclass(frozen=True)
class Prepared:
    """One request ready to send (and resend as it is)."""

    method: str
    url: str
    headers: dict[str, str]
    json: Any = None
    content: bytes | None = None
    params: dict[str, str] | None = None
    # Sent with an Idempotency-Key: a repeat must replay, never run again.
    idempotent: bool = False
    # Run once the case is done with (e.g. cancel a run it left parked).
    cleanup: Callable[[], Awaitable[None]] | None = None
    # Awaited before rows are counted: work the request started finishes first.
    settle: Callable[[], Awaitable[None]] | None = None


Prepare = Callable[[HostilePlatform, str], Awaitable[Prepared]]
_serial = itertools.count(1)


def unique() -> str:
    """A short value no earlier request of the run used."""
    return f"{next(_serial)}{uuid.uuid4().hex[:6]}"


def _request(
    api: HostilePlatform,
    method: str,
    url: str,
    *,
    json: Any = None,
    content: bytes | None = None,
    params: dict[str, str] | None = None,
    keyed: bool = True,
    headers: dict[str, str] | None = None,
) -> Prepared:
    sent = dict(headers if headers is not None else api.headers_for(url))
    if keyed:
        sent["Idempotency-Key"] = "guard-" + uuid.uuid4().hex
    return Prepared(method, url, sent, json, content, params, keyed)


async def _created(api: HostilePlatform, url: str, body: Any, *, admin: bool = False) -> Any:
    headers = api.admin if admin else api.headers
    response = await api.client.post(url, json=body, headers=headers)
    assert response.status_code in (200, 201, 202), (url, response.text)
    return response.json()


async def _content(api: HostilePlatform) -> str:
    piece = await _created(api, "/aso-engine/api/content", {"title": "T", "author": "A"})
    return str(piece["id"])


async def _keyword(api: HostilePlatform, n: str) -> str:
    body = {"phrase": f"guard {n}", "locale": "en-US"}
    return str((await _created(api, "/aso-engine/api/keywords", body))["id"])


async def _form(api: HostilePlatform, n: str) -> str:
    body = {"kind": "beta", "name": f"form {n}", "allowed_origins": ["https://www.acme.example"]}
    return str((await _created(api, "/intelligence-gateway/api/forms", body))["id"])


async def _campaign(api: HostilePlatform, n: str, *transitions: str) -> str:
    body = {**SAMPLE_BODIES[("POST", "/marketing-engine/campaigns/generate")], "name": f"c {n}"}
    campaign_id = str((await _created(api, "/marketing-engine/campaigns/generate", body))["id"])
    for verb in transitions:
        url = f"/marketing-engine/campaigns/{campaign_id}/{verb}"
        response = await api.client.post(url, headers=api.headers)
        assert response.status_code == 200, response.text
    return campaign_id


async def _template(api: HostilePlatform, n: str) -> str:
    industry = f"guard{n}"
    body = {"business_type": "bakery", "industry": industry, "body": template_body()}
    await _created(api, "/marketing-engine/templates", body)
    return industry


async def _schedule(api: HostilePlatform) -> str:
    body = SAMPLE_BODIES[("POST", "/system-runtime/api/workflow-schedules")]
    return str((await _created(api, "/system-runtime/api/workflow-schedules", body))["id"])


async def _conversation(api: HostilePlatform) -> str:
    return str((await _created(api, "/ai-assistant/api/conversations", {"title": "G"}))["id"])


async def _alert(api: HostilePlatform) -> str:
    body = SAMPLE_BODIES[("POST", "/platform-dashboard/api/alerts")]
    return str((await _created(api, "/platform-dashboard/api/alerts", body))["id"])


async def _key(api: HostilePlatform) -> str:
    body = {"name": "guard", "scopes": ["content:read"]}
    return str((await _created(api, "/admin/keys", body, admin=True))["key"]["id"])


async def _submission(api: HostilePlatform, n: str) -> str:
    email = f"guard{n}@example.com"
    body = {**SAMPLE_BODIES[("POST", "/intelligence-gateway/api/beta-applications")]}
    response = await api.client.post(
        "/intelligence-gateway/api/beta-applications",
        json={**body, "email": email},
        params={"form": api.form_public_ids["beta"]},
    )
    assert response.status_code == 202, response.text
    listed = await api.client.get(
        "/intelligence-gateway/api/submissions", params={"limit": "100"}, headers=api.headers
    )
    assert listed.status_code == 200, listed.text
    return next(str(item["id"]) for item in listed.json()["items"] if item["email"] == email)


# A definition whose only step waits for a signal: runs park at once.
GATED = "guard-gated"
_GATED_SPEC = {"name": GATED, "steps": [{"id": "gate", "kind": "approval"}]}
# A definition of one quick read: its runs end on their own.
QUICK = "guard-quick"
_QUICK_SPEC = {
    "name": QUICK,
    "steps": [{"id": "read", "operation": "aso.list_keywords", "input": {"limit": 1}}],
}
RUN_WAIT_SECONDS = 15.0


async def _run(api: HostilePlatform, *statuses: str) -> str:
    started = await _created(api, "/system-runtime/api/workflows/start", {"definition": GATED})
    run_id = str(started["id"])
    await _wait_run(api, run_id, statuses)
    return run_id


async def _wait_run(api: HostilePlatform, run_id: str, statuses: tuple[str, ...]) -> None:
    deadline = time.monotonic() + RUN_WAIT_SECONDS
    while True:
        response = await api.client.get(
            f"/system-runtime/api/workflows/{run_id}", headers=api.headers
        )
        status = response.json().get("status")
        if status in statuses:
            return
        assert time.monotonic() < deadline, (run_id, status, statuses)
        await asyncio.sleep(0.05)


async def _failed_run(api: HostilePlatform) -> str:
    run_id = await _run(api, "waiting")
    url = f"/system-runtime/api/workflows/{run_id}/signal"
    body = {"step_id": "gate", "decision": "reject"}
    response = await api.client.post(url, json=body, headers=api.headers)
    assert response.status_code == 200, response.text
    await _wait_run(api, run_id, ("failed",))
    return run_id


async def prepare_platform(api: HostilePlatform) -> None:
    """What the cases count on, made once per app: the workflow definitions they start,
    and the revocation epoch's one row (made by the first revocation)."""
    for spec in (_GATED_SPEC, _QUICK_SPEC):
        await _created(api, "/system-runtime/api/workflow-definitions", spec)
    revoked = await api.client.post(f"/admin/keys/{await _key(api)}/revoke", headers=api.admin)
    assert revoked.status_code == 200, revoked.text


async def _proposed_action(api: HostilePlatform, n: str) -> tuple[str, str]:
    body = {"message": f'track the keyword "proposed {n}"'}
    turn = await _created(api, "/ai-assistant/api/conversation/message", body)
    conversation_id = str(turn["conversation_id"])
    async with api.platform.sessionmaker() as session:
        found = await session.scalars(
            select(Message).where(
                Message.conversation_id == conversation_id, Message.role == "tool"
            )
        )
        for message in found:
            for call in message.tool_calls or []:
                action = call.get("action")
                if action and action.get("status") == "proposed":
                    return conversation_id, str(action["id"])
    raise AssertionError(f"no action proposed in {turn}")


async def _signed_in(api: HostilePlatform, prefix: str) -> dict[str, str]:
    api_key = api.headers["Authorization"].removeprefix("Bearer ")
    response = await api.client.post(prefix + "/session", json={"api_key": api_key})
    assert response.status_code == 201, response.text
    cookie = response.headers["set-cookie"].split(";", 1)[0]
    api.client.cookies.clear()
    return {"Cookie": cookie, "X-CSRF-Token": response.json()["csrf_token"]}


def _sample(key: tuple[str, str], **changes: Any) -> Any:
    sample = SAMPLE_BODIES[key]
    return {**sample, **changes} if isinstance(sample, dict) else sample


def _post(path: str, **changes: Callable[[str], Any]) -> Prepare:
    """A POST of the route's sample body, fields in ``changes`` made unique."""

    async def prepare(api: HostilePlatform, n: str) -> Prepared:
        body = _sample(("POST", path), **{name: make(n) for name, make in changes.items()})
        return _request(api, "POST", path, json=body)

    return prepare


def _on(
    method: str,
    path: str,
    make: Callable[[HostilePlatform, str], Awaitable[dict[str, str]]],
    *,
    keyed: bool = True,
) -> Prepare:
    """A request to ``path`` with its parameters made fresh by ``make``."""

    async def prepare(api: HostilePlatform, n: str) -> Prepared:
        values = await make(api, n)
        url = re.sub(r"\{([^}]+)\}", lambda m: values[m.group(1)], path)
        body = SAMPLE_BODIES.get((method, path))
        return _request(api, method, url, json=body, keyed=keyed)

    return prepare


async def _session_delete_prepare(api: HostilePlatform, prefix: str) -> Prepared:
    headers = await _signed_in(api, prefix)
    return _request(api, "DELETE", prefix + "/session", keyed=False, headers=headers)


def _session_routes(prefix: str) -> dict[tuple[str, str], Prepare]:
    async def sign_in(api: HostilePlatform, n: str) -> Prepared:
        api_key = api.headers["Authorization"].removeprefix("Bearer ")
        body = {"api_key": api_key}
        return _request(api, "POST", prefix + "/session", json=body, keyed=False, headers={})

    async def sign_out(api: HostilePlatform, n: str) -> Prepared:
        return await _session_delete_prepare(api, prefix)

    return {("POST", prefix + "/session"): sign_in, ("DELETE", prefix + "/session"): sign_out}


async def _bulk_import(api: HostilePlatform, n: str) -> Prepared:
    csv = f"phrase,locale,tags,target_url,intent\nbulk a {n},en-US,,,\nbulk b {n},en-US,,,\n"
    path = "/aso-engine/api/keywords/bulk-import"
    prepared = _request(api, "POST", path, content=csv.encode())
    prepared.headers["Content-Type"] = "text/csv"
    return prepared


async def _rankings(api: HostilePlatform, n: str) -> Prepared:
    keyword_id = await _keyword(api, n)
    body = _sample(("POST", "/aso-engine/api/rankings"))
    observation = {**body["observations"][0], "keyword_id": keyword_id}
    return _request(api, "POST", "/aso-engine/api/rankings", json={"observations": [observation]})


async def _public(api: HostilePlatform, n: str, path: str, kind: str) -> Prepared:
    body = _sample(("POST", path), email=f"public{n}@example.com")
    return _request(
        api, "POST", path, json=body, params={"form": api.form_public_ids[kind]}, headers={}
    )


async def _beta(api: HostilePlatform, n: str) -> Prepared:
    return await _public(api, n, "/intelligence-gateway/api/beta-applications", "beta")


async def _contact(api: HostilePlatform, n: str) -> Prepared:
    return await _public(api, n, "/intelligence-gateway/api/contact", "contact")


async def _chat(api: HostilePlatform, n: str) -> Prepared:
    body = SAMPLE_BODIES[("POST", "/ai-routing-engine/v1/chat/completions")]
    return _request(api, "POST", "/ai-routing-engine/v1/chat/completions", json=body, keyed=False)


async def _message(api: HostilePlatform, n: str) -> Prepared:
    body = {"message": f"Which keywords should we track? ({n})"}
    path = "/ai-assistant/api/conversation/message"
    return _request(api, "POST", path, json=body, keyed=False)


async def _conversation_message(api: HostilePlatform, n: str) -> Prepared:
    url = f"/ai-assistant/api/conversations/{await _conversation(api)}/messages"
    return _request(api, "POST", url, json={"message": f"And for the launch? ({n})"}, keyed=False)


def _action(verb: str) -> Prepare:
    async def prepare(api: HostilePlatform, n: str) -> Prepared:
        conversation_id, action_id = await _proposed_action(api, n)
        url = f"/ai-assistant/api/conversations/{conversation_id}/actions/{action_id}/{verb}"
        request = _request(api, "POST", url)
        if verb != "confirm":
            return request

        async def tracked() -> None:
            # The confirmed action runs as a workflow: its keyword arrives in a moment.
            deadline = time.monotonic() + RUN_WAIT_SECONDS
            phrase = f"proposed {n}"
            while time.monotonic() < deadline:
                async with api.platform.sessionmaker() as session:
                    query = select(func.count()).where(Keyword.phrase == phrase)
                    if await session.scalar(query):
                        return
                await asyncio.sleep(0.05)

        return dataclasses.replace(request, settle=tracked)

    return prepare


def _values(
    **makers: Callable[[HostilePlatform, str], Awaitable[str]],
) -> Callable[[HostilePlatform, str], Awaitable[dict[str, str]]]:
    async def make(api: HostilePlatform, n: str) -> dict[str, str]:
        return {name: await maker(api, n) for name, maker in makers.items()}

    return make


def _ignoring_n(
    maker: Callable[[HostilePlatform], Awaitable[str]],
) -> Callable[[HostilePlatform, str], Awaitable[str]]:
    async def make(api: HostilePlatform, n: str) -> str:
        return await maker(api)

    return make


def _constant(value: str) -> Callable[[HostilePlatform, str], Awaitable[str]]:
    async def make(api: HostilePlatform, n: str) -> str:
        return value

    return make


def _campaign_in(*transitions: str) -> Callable[[HostilePlatform, str], Awaitable[str]]:
    async def make(api: HostilePlatform, n: str) -> str:
        return await _campaign(api, n, *transitions)

    return make


async def _fresh_industry(api: HostilePlatform, n: str) -> str:
    return f"draft{n}"


async def _budget(api: HostilePlatform, n: str) -> str:
    body = SAMPLE_BODIES[("PUT", "/ai-routing-engine/api/budgets")]
    response = await api.client.put(
        "/ai-routing-engine/api/budgets", json=body, headers=api.headers
    )
    assert response.status_code == 200, response.text
    return "month"


async def _no_budget(api: HostilePlatform, n: str) -> str:
    # Each PUT creates the budget (an update would change no row count).
    await api.client.delete("/ai-routing-engine/api/budgets/month", headers=api.headers)
    return "month"


async def _waiting_run(api: HostilePlatform, n: str) -> str:
    return await _run(api, "waiting")


async def _resume(api: HostilePlatform, n: str) -> Prepared:
    run_id = await _failed_run(api)
    base = f"/system-runtime/api/workflows/{run_id}"

    async def cancel() -> None:
        # The resumed run parks at its gate again: it must not hold a queue slot.
        await api.client.post(base + "/cancel", headers=api.headers)

    return dataclasses.replace(_request(api, "POST", base + "/resume"), cleanup=cancel)


async def _signal(api: HostilePlatform, n: str) -> Prepared:
    run_id = await _run(api, "waiting")
    body = {"step_id": "gate", "decision": "approve"}
    return _request(api, "POST", f"/system-runtime/api/workflows/{run_id}/signal", json=body)


async def _start(api: HostilePlatform, n: str) -> Prepared:
    path = "/system-runtime/api/workflows/start"
    return _request(api, "POST", path, json={"definition": QUICK})


def _prefixes() -> list[str]:
    from xynergy.server import SERVICES

    return ["", *(f"/{slug}" for slug in SERVICES)]


WRITE_CASES: dict[tuple[str, str], Prepare] = {
    # --- ASO Engine
    ("POST", "/aso-engine/api/content"): _post("/aso-engine/api/content"),
    ("PATCH", "/aso-engine/api/content/{content_id}"): _on(
        "PATCH",
        "/aso-engine/api/content/{content_id}",
        _values(content_id=_ignoring_n(_content)),
    ),
    ("DELETE", "/aso-engine/api/content/{content_id}"): _on(
        "DELETE",
        "/aso-engine/api/content/{content_id}",
        _values(content_id=_ignoring_n(_content)),
    ),
    ("POST", "/aso-engine/api/keywords"): _post(
        "/aso-engine/api/keywords", phrase=lambda n: f"yoga mats {n}"
    ),
    ("DELETE", "/aso-engine/api/keywords/{keyword_id}"): _on(
        "DELETE", "/aso-engine/api/keywords/{keyword_id}", _values(keyword_id=_keyword)
    ),
    ("POST", "/aso-engine/api/keywords/bulk-import"): _bulk_import,
    ("POST", "/aso-engine/api/rankings"): _rankings,
    # --- AI Routing Engine
    ("POST", "/ai-routing-engine/v1/chat/completions"): _chat,
    ("POST", "/ai-routing-engine/api/generate/intelligent"): _post(
        "/ai-routing-engine/api/generate/intelligent", prompt=lambda n: f"A tagline ({n})"
    ),
    ("PUT", "/ai-routing-engine/api/budgets"): _on(
        "PUT", "/ai-routing-engine/api/budgets", _values(period=_no_budget)
    ),
    ("DELETE", "/ai-routing-engine/api/budgets/{period}"): _on(
        "DELETE", "/ai-routing-engine/api/budgets/{period}", _values(period=_budget)
    ),
    # --- Intelligence Gateway
    ("POST", "/intelligence-gateway/api/beta-applications"): _beta,
    ("POST", "/intelligence-gateway/api/contact"): _contact,
    ("PATCH", "/intelligence-gateway/api/submissions/{submission_id}"): _on(
        "PATCH",
        "/intelligence-gateway/api/submissions/{submission_id}",
        _values(submission_id=_submission),
    ),
    ("POST", "/intelligence-gateway/api/forms"): _post(
        "/intelligence-gateway/api/forms", name=lambda n: f"Beta list {n}"
    ),
    ("PATCH", "/intelligence-gateway/api/forms/{form_id}"): _on(
        "PATCH",
        "/intelligence-gateway/api/forms/{form_id}",
        _values(form_id=_form),
        keyed=False,
    ),
    ("DELETE", "/intelligence-gateway/api/forms/{form_id}"): _on(
        "DELETE", "/intelligence-gateway/api/forms/{form_id}", _values(form_id=_form)
    ),
    # --- Marketing Engine
    ("POST", "/marketing-engine/keywords/research"): _post(
        "/marketing-engine/keywords/research",
        seeds=lambda n: [f"yoga mats {n}"],
        add_to_tracked=lambda n: [f"yoga mats {n}"],
    ),
    ("POST", "/marketing-engine/campaigns/generate"): _post(
        "/marketing-engine/campaigns/generate", name=lambda n: f"Spring {n}"
    ),
    **{
        ("POST", f"/marketing-engine/campaigns/{{campaign_id}}/{verb}"): _on(
            "POST",
            f"/marketing-engine/campaigns/{{campaign_id}}/{verb}",
            _values(campaign_id=_campaign_in(*before)),
        )
        for verb, before in {
            "approve": (),
            "activate": ("approve",),
            "complete": ("approve", "activate"),
            "archive": (),
        }.items()
    },
    ("POST", "/marketing-engine/templates"): _post(
        "/marketing-engine/templates", industry=lambda n: f"food{n}"
    ),
    ("PUT", "/marketing-engine/templates/{business_type}/{industry}"): _on(
        "PUT",
        "/marketing-engine/templates/{business_type}/{industry}",
        _values(business_type=_constant("bakery"), industry=_template),
    ),
    ("POST", "/marketing-engine/templates/{business_type}/{industry}/draft"): _on(
        "POST",
        "/marketing-engine/templates/{business_type}/{industry}/draft",
        _values(business_type=_constant("retail"), industry=_fresh_industry),
    ),
    # --- System Runtime
    ("POST", "/system-runtime/api/workflows/start"): _start,
    ("POST", "/system-runtime/api/workflows/{run_id}/cancel"): _on(
        "POST", "/system-runtime/api/workflows/{run_id}/cancel", _values(run_id=_waiting_run)
    ),
    ("POST", "/system-runtime/api/workflows/{run_id}/resume"): _resume,
    ("POST", "/system-runtime/api/workflows/{run_id}/signal"): _signal,
    ("POST", "/system-runtime/api/workflow-definitions"): _post(
        "/system-runtime/api/workflow-definitions", name=lambda n: f"weekly-{n}"
    ),
    ("POST", "/system-runtime/api/workflow-schedules"): _post(
        "/system-runtime/api/workflow-schedules"
    ),
    ("PATCH", "/system-runtime/api/workflow-schedules/{schedule_id}"): _on(
        "PATCH",
        "/system-runtime/api/workflow-schedules/{schedule_id}",
        _values(schedule_id=_ignoring_n(_schedule)),
    ),
    ("DELETE", "/system-runtime/api/workflow-schedules/{schedule_id}"): _on(
        "DELETE",
        "/system-runtime/api/workflow-schedules/{schedule_id}",
        _values(schedule_id=_ignoring_n(_schedule)),
    ),
    ("POST", "/system-runtime/api/services/{service}/trigger"): _on(
        "POST",
        "/system-runtime/api/services/{service}/trigger",
        _values(service=_constant("intelligence-gateway")),
    ),
    # --- AI Assistant
    ("POST", "/ai-assistant/api/conversations"): _post("/ai-assistant/api/conversations"),
    ("PATCH", "/ai-assistant/api/conversations/{conversation_id}"): _on(
        "PATCH",
        "/ai-assistant/api/conversations/{conversation_id}",
        _values(conversation_id=_ignoring_n(_conversation)),
    ),
    ("DELETE", "/ai-assistant/api/conversations/{conversation_id}"): _on(
        "DELETE",
        "/ai-assistant/api/conversations/{conversation_id}",
        _values(conversation_id=_ignoring_n(_conversation)),
    ),
    ("POST", "/ai-assistant/api/conversation/message"): _message,
    ("POST", "/ai-assistant/api/conversations/{conversation_id}/messages"): _conversation_message,
    (
        "POST",
        "/ai-assistant/api/conversations/{conversation_id}/actions/{action_id}/confirm",
    ): _action("confirm"),
    (
        "POST",
        "/ai-assistant/api/conversations/{conversation_id}/actions/{action_id}/reject",
    ): _action("reject"),
    # --- Platform Dashboard
    ("POST", "/platform-dashboard/api/alerts"): _post(
        "/platform-dashboard/api/alerts", name=lambda n: f"Daily AI spend {n}"
    ),
    ("PATCH", "/platform-dashboard/api/alerts/{rule_id}"): _on(
        "PATCH",
        "/platform-dashboard/api/alerts/{rule_id}",
        _values(rule_id=_ignoring_n(_alert)),
        keyed=False,
    ),
    ("DELETE", "/platform-dashboard/api/alerts/{rule_id}"): _on(
        "DELETE",
        "/platform-dashboard/api/alerts/{rule_id}",
        _values(rule_id=_ignoring_n(_alert)),
    ),
    # --- Platform admin
    ("POST", "/admin/tenants"): _post("/admin/tenants", name=lambda n: f"initech-{n}"),
    ("POST", "/admin/keys"): _post("/admin/keys"),
    ("POST", "/admin/keys/{key_id}/rotate"): _on(
        "POST", "/admin/keys/{key_id}/rotate", _values(key_id=_ignoring_n(_key)), keyed=False
    ),
    ("POST", "/admin/keys/{key_id}/revoke"): _on(
        "POST", "/admin/keys/{key_id}/revoke", _values(key_id=_ignoring_n(_key))
    ),
    # --- Browser sign-in, at the root of every app
    **{
        case: prepare for prefix in _prefixes() for case, prepare in _session_routes(prefix).items()
    },
}

# Routes exempt from the Idempotency-Key layer whose repeat is, by design, a new
# write (a new turn in the history): a retry after a 503 may leave the failed
# turn's first rows beside the new turn's. Rows must not be missing, only added.
REPEAT_IS_NEW: dict[tuple[str, str], str] = {
    ("POST", "/ai-assistant/api/conversation/message"): "each turn is stored as it happens",
    (
        "POST",
        "/ai-assistant/api/conversations/{conversation_id}/messages",
    ): "each turn is stored as it happens",
}
# Routes that keep their own Idempotency-Key (the public intake): every accepted
# submission gets the same 202 bytes, so a repeat is not marked as a replay.
OWN_IDEMPOTENCY: dict[tuple[str, str], str] = {
    ("POST", "/intelligence-gateway/api/beta-applications"): "same 202 for every submission",
    ("POST", "/intelligence-gateway/api/contact"): "same 202 for every submission",
}

# Walked, but their request commits no write, so no commit of theirs can fail.
NO_REQUEST_PATH_WRITES: dict[tuple[str, str], str] = {
    ("POST", "/ai-routing-engine/v1/chat/completions"): (
        "exempt from Idempotency-Key (OpenAI clients send none); its usage row is "
        "write-behind (the ledger, retried by the next flush)"
    ),
}

# Write routes that write nothing to the database, and why they are not walked.
EXCLUDED: dict[tuple[str, str], str] = {
    ("POST", "/admin/secrets/reload"): "re-reads secret files into memory; no database write",
    ("POST", "/system-runtime/api/ws-tickets"): "a single-use ticket held in memory (or Redis)",
}
