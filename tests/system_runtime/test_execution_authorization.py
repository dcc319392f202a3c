"""Who may start and steer runs, and what a run may do as the key that started it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.system_runtime.support import RUNS, harness, op
from xynergy.platform.config import Settings
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.tenancy import service as tenancy

pytestmark = pytest.mark.asyncio

_GATED = [
    {"id": "gate", "kind": "approval"},
    op("after", "test.sleep", depends_on=["gate"]),
]


class TestTenancy:
    async def test_another_tenants_run_is_not_found_on_every_endpoint(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        async with harness(make_settings(database_url=database_url)) as h:
            await h.define("gated", _GATED)
            run_id = await h.started("gated")
            await h.wait_for(run_id, ("waiting",))
            _, _, other = await h.key(tenant="globex")
            answers = {
                "get": (await h.client.get(f"{RUNS}/{run_id}", headers=_auth(other))).status_code,
                "cancel": (await h.post(run_id, "cancel", secret=other)).status_code,
                "resume": (await h.post(run_id, "resume", secret=other)).status_code,
                "signal": (
                    await h.post(
                        run_id, "signal", {"step_id": "gate", "decision": "reject"}, secret=other
                    )
                ).status_code,
            }
            listed = (await h.client.get(RUNS, headers=_auth(other))).json()["items"]
            mine = await h.detail(run_id)
        assert answers == {"get": 404, "cancel": 404, "resume": 404, "signal": 404}
        assert listed == []
        assert mine["status"] == "waiting", "nothing the other tenant sent reached the run"


class TestScopes:
    async def test_starting_needs_workflows_write(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        async with harness(make_settings(database_url=database_url)) as h:
            await h.define("one", [op("only", "test.sleep")])
            _, _, reader = await h.key(scopes=("workflows:read", "content:read"))
            response = await h.start("one", secret=reader)
            runs = await h.run_count()
        assert response.status_code == 403, response.text
        assert runs == 0

    async def test_a_definition_needing_a_scope_the_key_lacks_is_refused_before_a_run_exists(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        async with harness(make_settings(database_url=database_url)) as h:
            await h.define("guarded", [op("only", "test.sleep"), op("admin", "test.guarded")])
            response = await h.start("guarded")
            runs = await h.run_count()
        assert response.status_code == 403, response.text
        assert "intake:admin" in response.json()["detail"]
        assert runs == 0
        assert h.probe.calls == {}

    async def test_a_key_revoked_while_its_run_waits_stops_the_run_at_its_next_step(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        async with harness(make_settings(database_url=database_url)) as h:
            await h.define("gated", _GATED)
            run_id = await h.started("gated")
            await h.wait_for_step(run_id, "gate", "waiting")
            _, _, approver = await h.key()
            async with unit_of_work(h.platform.sessionmaker) as session:
                await tenancy.revoke_key(
                    session,
                    tenant_id=h.tenant_id,
                    key_id=h.key_id,
                    invalidate=h.platform.key_verifier.invalidate,
                )
            signal = await h.post(
                run_id, "signal", {"step_id": "gate", "decision": "approve"}, secret=approver
            )
            h.secret = approver
            body = await h.wait_for(run_id)
        assert signal.status_code == 200, signal.text
        assert body["status"] == "failed", body
        assert body["error_code"] == "key_unusable"
        assert "revoked" in body["error"]
        assert h.probe.calls["after"] == 0, "nothing was called with the dead key"


class TestIdempotentStart:
    async def test_the_same_key_starts_one_run(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        async with harness(make_settings(database_url=database_url)) as h:
            await h.define("one", [op("only", "test.sleep")])
            await h.define("two", [op("only", "test.sleep")])
            first = await h.start("one", {}, idempotency_key="start-1")
            second = await h.start("one", {}, idempotency_key="start-1")
            other_body = await h.start("two", {}, idempotency_key="start-1")
            await h.wait_for(first.json()["id"])
            runs = await h.run_count()
        assert first.status_code == 202, first.text
        assert second.status_code == 202, second.text
        assert second.json()["id"] == first.json()["id"]
        assert runs == 1
        assert h.probe.calls["only"] == 1
        # The platform's Idempotency-Key layer answers first (the runs service's own
        # 409 stays for a key whose platform record has expired).
        assert other_body.status_code == 422, other_body.text
        assert other_body.json()["error"] == "idempotency_key_reused"


def _auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}
