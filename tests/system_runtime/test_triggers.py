"""Service triggers: catalogue operations only, the caller's scopes, nothing before checks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from tests.helpers import auth
from tests.system_runtime.support import TEST_SERVICE, Harness, harness
from xynergy.platform.config import Settings
from xynergy.platform.services import ServiceClient
from xynergy.system_runtime.catalogue import BUILT_IN_OPERATIONS
from xynergy.system_runtime.config import RuntimeSettings

pytestmark = pytest.mark.asyncio

TRIGGER = "/system-runtime/api/services/{service}/trigger"
# The test service's sleep needs content:read, its write content:write.
CALLER_SCOPES = ("workflows:write", "content:read", "content:write", "campaigns:write")


class _Spy:
    """Counts every call the platform's service client makes (any service)."""

    def __init__(self, client: ServiceClient) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self._request = client.request

    async def request(self, service: str, method: str, path: str, **kwargs: Any) -> Any:
        self.calls.append((service, method, path))
        return await self._request(service, method, path, **kwargs)


@asynccontextmanager
async def _triggers(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, **runtime: Any
) -> AsyncIterator[tuple[Harness, _Spy]]:
    values: dict[str, Any] = {"retry_base_seconds": 0.01, **runtime}
    async with harness(settings, runtime=RuntimeSettings(**values), scopes=CALLER_SCOPES) as h:
        spy = _Spy(h.platform.services)
        monkeypatch.setattr(h.platform.services, "request", spy.request)
        yield h, spy


async def _trigger(
    h: Harness,
    service: str,
    operation: str,
    payload: dict[str, Any] | None = None,
    *,
    secret: str | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    body = {"operation": operation, "input": payload or {}}
    return await h.client.post(
        TRIGGER.format(service=service),
        json=body,
        headers={**auth(secret or h.secret), **(headers or {})},
    )


async def test_an_operation_of_the_service_answers_its_result(
    make_settings: Callable[..., Settings], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _triggers(make_settings(database_url=database_url), monkeypatch) as (h, spy):
        response = await _trigger(h, TEST_SERVICE, "test.sleep", {"tag": "t1"})
        assert response.status_code == 200, response.text
        assert response.json() == {
            "operation": "test.sleep",
            "service": TEST_SERVICE,
            "output": {"tag": "t1", "slept_ms": 0},
        }
        assert spy.calls == [(TEST_SERVICE, "POST", "/api/sleep")]
        # It acted as the caller's tenant, and started no run.
        assert h.probe.tenant_max_in_flight[h.tenant_id] == 1
        assert await h.run_count() == 0


async def test_missing_operation_scope_is_403_before_anything_runs(
    make_settings: Callable[..., Settings], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _triggers(make_settings(database_url=database_url), monkeypatch) as (h, spy):
        # test.guarded needs intake:admin, which the key lacks.
        response = await _trigger(h, TEST_SERVICE, "test.guarded", {"tag": "g"})
        assert response.status_code == 403, response.text
        assert "intake:admin" in response.json()["detail"]
        _, _, reader = await h.key(scopes=("workflows:write", "content:read"))
        refused = await _trigger(h, TEST_SERVICE, "test.create", {"tag": "w"}, secret=reader)
        assert refused.status_code == 403
        # Without workflows:write the route itself refuses.
        _, _, plain = await h.key(scopes=("content:read", "content:write"))
        route = await _trigger(h, TEST_SERVICE, "test.sleep", {"tag": "p"}, secret=plain)
        assert route.status_code == 403
        assert spy.calls == []
        assert sum(h.probe.calls.values()) == 0
        assert sum(h.probe.side_effects.values()) == 0
        assert await h.run_count() == 0


@pytest.mark.parametrize(
    ("service", "operation", "status"),
    [
        # Another service's operation, named under this service: refused.
        (TEST_SERVICE, "intake.stats", 422),
        (TEST_SERVICE, "aso.create_content", 422),
        ("aso-engine", "test.sleep", 422),
        (TEST_SERVICE, "test.nope", 422),
        ("no-such-service", "test.sleep", 404),
        # A service with no catalogue operation (the runtime itself): nothing to trigger.
        ("system-runtime", "test.sleep", 404),
        (TEST_SERVICE, "../api/sleep", 422),
        (TEST_SERVICE, "/api/sleep", 422),
    ],
)
async def test_only_the_services_catalogue_operations_are_reachable(
    make_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
    service: str,
    operation: str,
    status: int,
) -> None:
    async with _triggers(make_settings(), monkeypatch) as (h, spy):
        response = await _trigger(h, service, operation, {"tag": "x"})
        assert response.status_code == status, response.text
        assert set(response.json()) == {"error", "detail", "request_id"}
        assert spy.calls == []


@pytest.mark.parametrize(
    "service", ["..", "%2e%2e", "aso-engine%2F..%2Fsystem-runtime", "ASO-ENGINE", "a" * 64]
)
async def test_the_service_segment_is_a_slug(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch, service: str
) -> None:
    async with _triggers(make_settings(), monkeypatch) as (h, spy):
        response = await _trigger(h, service, "test.sleep", {"tag": "x"})
        assert response.status_code in (404, 422), response.text
        assert spy.calls == []


@pytest.mark.parametrize(
    "campaign_id", ["../../api/admin", "..", "a/b", "x?y=1", "%2e%2e", "a b", "", "a" * 65]
)
async def test_path_parameters_cannot_escape_the_operations_path(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch, campaign_id: str
) -> None:
    async with _triggers(make_settings(), monkeypatch) as (h, spy):
        response = await _trigger(
            h, "marketing-engine", "marketing.approve_campaign", {"campaign_id": campaign_id}
        )
        assert response.status_code == 422, response.text
        assert "identifier" in response.json()["detail"]
        assert spy.calls == []


async def test_a_path_parameter_fills_the_operations_path(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _triggers(make_settings(), monkeypatch) as (h, spy):
        response = await _trigger(
            h, "marketing-engine", "marketing.approve_campaign", {"campaign_id": "f" * 32}
        )
        # No such campaign: the callee's 404 is the caller's answer, not a 502.
        assert response.status_code == 404, response.text
        operation = BUILT_IN_OPERATIONS.get("marketing.approve_campaign")
        assert operation is not None
        path = operation.path.replace("{campaign_id}", "f" * 32)
        assert spy.calls == [("marketing-engine", "POST", path)]


async def test_a_write_carries_one_idempotency_key_per_caller_key(
    make_settings: Callable[..., Settings], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _triggers(make_settings(database_url=database_url), monkeypatch) as (h, _):
        again = {"Idempotency-Key": "order-42"}
        first = await _trigger(h, TEST_SERVICE, "test.create", {"tag": "w"}, headers=again)
        second = await _trigger(h, TEST_SERVICE, "test.create", {"tag": "w"}, headers=again)
        assert first.status_code == second.status_code == 200
        assert first.json()["output"]["id"] == second.json()["output"]["id"]
        assert h.probe.side_effects["w"] == 1
        # Without the header each trigger is its own write (with its own key).
        await _trigger(h, TEST_SERVICE, "test.create", {"tag": "w"})
        assert h.probe.side_effects["w"] == 2
        assert all(key.startswith("xynergy-trigger-") for key in h.probe.invocations_by_key)


async def test_callee_failures_are_retried_or_answered_as_they_are(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _triggers(make_settings(), monkeypatch, trigger_attempts=3) as (h, _):
        h.probe.fail("flaky", 503)
        healed = await _trigger(h, TEST_SERVICE, "test.flaky", {"tag": "flaky"})
        assert healed.status_code == 200, healed.text
        assert h.probe.calls["flaky"] == 2  # one retry of the 503

        h.probe.fail_always("bad", 400)
        bad = await _trigger(h, TEST_SERVICE, "test.flaky", {"tag": "bad"})
        assert bad.status_code == 400, bad.text
        assert h.probe.calls["bad"] == 1  # a 4xx is never retried

        h.probe.fail_always("down", 503)
        down = await _trigger(h, TEST_SERVICE, "test.flaky", {"tag": "down"})
        assert down.status_code == 503, down.text
        assert h.probe.calls["down"] == 3


async def test_the_input_is_bounded(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _triggers(make_settings(), monkeypatch, input_max_bytes=256) as (h, spy):
        response = await _trigger(h, TEST_SERVICE, "test.sleep", {"tag": "x" * 300})
        assert response.status_code == 422, response.text
        assert spy.calls == []
