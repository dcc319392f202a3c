"""PATCH /api/alerts/{id}: period and target change within the kind's shape; a webhook
secret rotates and is answered once; refused changes write nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.intelligence_gateway.outbox.support import fast_outbox
from tests.platform_dashboard.test_alerts import ALERTS, AlertsApi, alerts_api, spend_rule
from xynergy.platform.config import Settings
from xynergy.platform_dashboard.alerts.config import AlertSettings

HOOK = "https://hooks.example.com/alerts"


@pytest.fixture
async def api(
    make_settings: Callable[..., Settings], database_url: str
) -> AsyncIterator[AlertsApi]:
    settings = make_settings(database_url=database_url, **fast_outbox())
    async with alerts_api(settings, AlertSettings(install_defaults=False)) as running_api:
        yield running_api


async def made(api: AlertsApi, **fields: Any) -> dict[str, Any]:
    answer = await api.client.post(ALERTS, json=spend_rule(**fields), headers=api.acme)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def patch(api: AlertsApi, rule_id: str, body: dict[str, Any]) -> Any:
    return await api.client.patch(f"{ALERTS}/{rule_id}", json=body, headers=api.acme)


class TestEdit:
    async def test_period_and_target_change(self, api: AlertsApi) -> None:
        rule = await made(api)
        answer = await patch(api, rule["id"], {"period": "month", "target": "chat", "threshold": 9})
        assert answer.status_code == 200, answer.text
        assert (answer.json()["period"], answer.json()["target"]) == ("month", "chat")
        assert answer.json()["threshold"] == 9.0
        assert answer.json()["webhook_secret"] is None

    async def test_a_change_that_breaks_the_kind_is_refused_and_writes_nothing(
        self, api: AlertsApi
    ) -> None:
        rule = await made(api)
        answer = await patch(api, rule["id"], {"period": None, "threshold": 7})
        assert answer.status_code == 422
        assert answer.json()["detail"] == "period: spend rules need 'day' or 'month'."
        shown = (await api.client.get(f"{ALERTS}/{rule['id']}", headers=api.acme)).json()
        assert (shown["period"], shown["threshold"]) == ("day", 1.0)

    async def test_the_webhook_secret_rotates_and_is_answered_once(self, api: AlertsApi) -> None:
        rule = await made(api, webhook_url=HOOK)
        answer = await patch(api, rule["id"], {"rotate_webhook_secret": True})
        assert answer.status_code == 200, answer.text
        rotated = answer.json()["webhook_secret"]
        assert rotated.startswith("whsec_")
        assert rotated != rule["webhook_secret"]
        again = await patch(api, rule["id"], {"name": "Renamed"})
        assert again.json()["webhook_secret"] is None

    async def test_no_rotation_without_a_webhook(self, api: AlertsApi) -> None:
        rule = await made(api)
        answer = await patch(api, rule["id"], {"rotate_webhook_secret": True})
        assert answer.status_code == 422
        assert "webhook_url" in answer.json()["detail"]
