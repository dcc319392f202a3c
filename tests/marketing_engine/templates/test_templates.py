"""Templates: built-ins, versioned tenant templates, cache invalidation, AI drafts, isolation.

A GET never drafts or writes; an AI draft is a POST in the ``ai_generate`` rate class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.helpers import auth, issue_key, scrape
from tests.marketing_engine.campaigns.harness import (
    TEMPLATES,
    MarketingApi,
    marketing_api,
    template_body,
)
from xynergy.marketing_engine.templates.builtin import BUILTIN_TEMPLATES
from xynergy.platform.config import DEFAULT_RATE_LIMITS, Settings

SMALL_BODY_MAX = 2_000
AI_ENGINE = "ai-routing-engine"
DRAFTS_PER_MINUTE = 2


def ai_engine_requests(api: MarketingApi) -> float:
    """Requests the AI Routing Engine has served (every route and status), from its metrics."""
    total = 0.0
    for line in scrape(api.platform).splitlines():
        if line.startswith("xynergy_http_requests_total{") and f'service="{AI_ENGINE}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


async def _draft(
    api: MarketingApi, key: str = "bakery/food", headers: dict[str, str] | None = None
) -> Any:
    return await api.client.post(f"{TEMPLATES}/{key}/draft", headers=headers or api.headers)


async def _create(api: MarketingApi, headers: dict[str, str] | None = None, **fields: Any) -> Any:
    payload = {"business_type": "saas", "industry": "fintech", "body": template_body(), **fields}
    response = await api.client.post(TEMPLATES, json=payload, headers=headers or api.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def _resolve(
    api: MarketingApi, key: str = "saas/fintech", headers: dict[str, str] | None = None
) -> Any:
    response = await api.client.get(f"{TEMPLATES}/{key}", headers=headers or api.headers)
    assert response.status_code == 200, response.text
    return response.json()


class TestFindTemplate:
    async def test_builtin_serves_every_industry(self, api: MarketingApi) -> None:
        resolved = await _resolve(api, "ecommerce/fashion")
        assert (resolved["source"], resolved["industry"], resolved["version"]) == (
            "builtin",
            "generic",
            1,
        )
        assert resolved["body"] == dict(BUILTIN_TEMPLATES["ecommerce"])

    async def test_an_unknown_pair_is_404_with_no_ai_call_and_nothing_written(
        self, api: MarketingApi
    ) -> None:
        before = ai_engine_requests(api)
        for _ in range(3):
            response = await api.client.get(f"{TEMPLATES}/bakery/food", headers=api.headers)
            assert response.status_code == 404, response.text
            body = response.json()
            assert set(body) == {"error", "detail", "request_id"}
            assert body["error"] == "not_found"
            assert "/draft" in body["detail"]
        assert ai_engine_requests(api) == before
        assert await api.template_rows() == 0

    async def test_a_read_only_key_gets_404_for_an_unknown_pair(self, api: MarketingApi) -> None:
        _, reader = await issue_key(api.platform, tenant="acme", scopes=("campaigns:read",))
        before = ai_engine_requests(api)
        response = await api.client.get(f"{TEMPLATES}/bakery/food", headers=auth(reader.secret))
        assert response.status_code == 404, response.text
        assert ai_engine_requests(api) == before
        assert await api.template_rows() == 0

    async def test_a_template_drafted_by_a_campaign_is_then_found(self, api: MarketingApi) -> None:
        assert (
            await api.client.get(f"{TEMPLATES}/bakery/food", headers=api.headers)
        ).status_code == 404
        generated = await api.generated(business_type="bakery", industry="food")
        assert generated["plan"]["template"]["source"] == "ai"
        found = await _resolve(api, "bakery/food")
        assert (found["source"], found["version"]) == ("ai", 1)
        assert await api.template_rows(source="ai") == 1

    async def test_a_generic_tenant_template_serves_other_industries(
        self, api: MarketingApi
    ) -> None:
        await _create(api, industry="generic", body=template_body("Generic own"))
        resolved = await _resolve(api, "saas/retail")
        assert (resolved["source"], resolved["body"]["summary"]) == ("custom", "Generic own")

    async def test_a_malformed_key_is_refused(self, api: MarketingApi) -> None:
        response = await api.client.get(f"{TEMPLATES}/SaaS!/x", headers=api.headers)
        assert response.status_code == 422


class TestDraftTemplate:
    async def test_drafts_stores_and_is_then_found(self, api: MarketingApi) -> None:
        before = ai_engine_requests(api)
        response = await _draft(api)
        assert response.status_code == 201, response.text
        drafted = response.json()
        assert (drafted["source"], drafted["version"], drafted["industry"]) == ("ai", 1, "food")
        assert drafted["body"]["key_messages"]
        assert ai_engine_requests(api) == before + 1
        assert await _resolve(api, "bakery/food") == drafted
        assert await api.template_rows(source="ai") == 1

    async def test_a_draft_is_the_next_version_and_replaces_the_cached_one(
        self, api: MarketingApi
    ) -> None:
        assert (await _resolve(api))["source"] == "builtin"  # now cached
        response = await _draft(api, "saas/fintech")
        assert response.status_code == 201, response.text
        assert (await _resolve(api))["source"] == "ai"
        again = await _draft(api, "saas/fintech")
        assert again.json()["version"] == 2
        assert (await _resolve(api))["version"] == 2

    @pytest.mark.parametrize(
        "scopes",
        [("campaigns:read", "ai:generate"), ("templates:write",)],
        ids=["no-templates-write", "no-ai-generate"],
    )
    async def test_needs_templates_write_and_ai_generate(
        self, api: MarketingApi, scopes: tuple[str, ...]
    ) -> None:
        _, issued = await issue_key(api.platform, tenant="acme", scopes=scopes)
        before = ai_engine_requests(api)
        response = await _draft(api, headers=auth(issued.secret))
        assert response.status_code == 403, response.text
        assert ai_engine_requests(api) == before
        assert await api.template_rows() == 0

    async def test_is_limited_by_the_ai_generate_class(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        limits = {**DEFAULT_RATE_LIMITS, "ai_generate": f"{DRAFTS_PER_MINUTE}/minute"}
        settings = make_settings(database_url=database_url, rate_limits=limits)
        async with marketing_api(settings) as api:
            for number in range(DRAFTS_PER_MINUTE):
                response = await _draft(api, f"bakery/food-{number}")
                assert response.status_code == 201, response.text
            calls = ai_engine_requests(api)
            refused = await _draft(api, "bakery/food-late")
            assert refused.status_code == 429, refused.text
            assert refused.json()["error"] == "rate_limited"
            assert int(refused.headers["Retry-After"]) > 0
            assert ai_engine_requests(api) == calls
            assert await api.template_rows() == DRAFTS_PER_MINUTE
            # Reads are another class: still answered.
            assert (
                await api.client.get(f"{TEMPLATES}/saas/x", headers=api.headers)
            ).status_code == 200

    async def test_a_malformed_key_is_refused_before_any_ai_call(self, api: MarketingApi) -> None:
        before = ai_engine_requests(api)
        response = await api.client.post(f"{TEMPLATES}/SaaS!/x/draft", headers=api.headers)
        assert response.status_code == 422
        assert ai_engine_requests(api) == before


class TestVersioning:
    async def test_put_creates_v2_resolve_serves_it_and_the_cache_is_invalidated(
        self, api: MarketingApi
    ) -> None:
        assert (await _resolve(api))["source"] == "builtin"  # now cached
        v1 = await _create(api)
        assert (v1["version"], v1["source"]) == (1, "custom")
        assert (await _resolve(api))["version"] == 1
        response = await api.client.put(
            f"{TEMPLATES}/saas/fintech",
            json={"body": template_body("Version two")},
            headers=api.headers,
        )
        assert response.status_code == 200, response.text
        assert response.json()["version"] == 2
        resolved = await _resolve(api)
        assert (resolved["version"], resolved["body"]["summary"]) == (2, "Version two")
        assert await api.template_rows(business_type="saas") == 2

    async def test_a_generation_after_the_change_uses_the_new_template(
        self, api: MarketingApi
    ) -> None:
        before = await api.generated()
        assert before["plan"]["template"]["source"] == "builtin"
        await api.client.put(
            f"{TEMPLATES}/saas/fintech",
            json={"body": template_body("Changed")},
            headers=api.headers,
        )
        after = await api.generated()
        assert after["plan"]["template"]["source"] == "custom"
        assert after["plan"]["utm"]["email"]["utm_medium"] == "newsletter"
        reused = {step["name"]: step["reused"] for step in after["steps"]}
        assert reused["template"] is False
        assert reused["channel_plan"] is False

    async def test_list_shows_latest_versions_then_builtins_page_by_page(
        self, api: MarketingApi
    ) -> None:
        await _create(api)
        await api.client.put(
            f"{TEMPLATES}/saas/fintech", json={"body": template_body("v2")}, headers=api.headers
        )
        await _create(api, business_type="agency", industry="legal")
        listed = await api.list_all(TEMPLATES)
        keys = [(t["business_type"], t["industry"], t["version"], t["source"]) for t in listed]
        assert keys[:2] == [("agency", "legal", 1, "custom"), ("saas", "fintech", 2, "custom")]
        builtins = [key for key in keys if key[3] == "builtin"]
        assert sorted(key[0] for key in builtins) == sorted(BUILTIN_TEMPLATES)
        assert len(keys) == 2 + len(BUILTIN_TEMPLATES)

    @pytest.mark.parametrize(
        ("body", "phrase"),
        [
            ({**template_body(), "phases": [{"name": "A", "share_percent": 50}]}, "add up to 100"),
            ({**template_body(), "key_messages": []}, "key_messages"),
            ({**template_body(), "extra": 1}, "extra"),
            (
                {**template_body(), "default_tactics": ["t" * 400] * 20, "key_messages": ["m"]},
                "characters of JSON",
            ),
        ],
        ids=["phases", "no-messages", "unknown-field", "too-large"],
    )
    async def test_bad_bodies_are_refused_and_nothing_written(
        self,
        make_settings: Callable[..., Settings],
        monkeypatch: pytest.MonkeyPatch,
        body: dict[str, Any],
        phrase: str,
    ) -> None:
        # A small configured bound, read from the environment when the app is built.
        monkeypatch.setenv("XYNERGY_MARKETING_TEMPLATE_BODY_MAX_CHARS", str(SMALL_BODY_MAX))
        async with marketing_api(make_settings()) as api:
            response = await api.client.post(
                TEMPLATES, json={"business_type": "saas", "body": body}, headers=api.headers
            )
            assert response.status_code == 422, response.text
            assert phrase in response.text
            assert await api.template_rows() == 0

    async def test_writes_need_templates_write(self, api: MarketingApi) -> None:
        _, issued = await issue_key(
            api.platform, tenant="acme", scopes=("campaigns:read", "campaigns:write")
        )
        response = await api.client.put(
            f"{TEMPLATES}/saas/fintech",
            json={"body": template_body()},
            headers=auth(issued.secret),
        )
        assert response.status_code == 403
        assert await api.template_rows() == 0


class TestTemplateIsolation:
    async def test_another_tenants_templates_are_never_seen(self, api: MarketingApi) -> None:
        await _create(api, headers=api.other, body=template_body("Theirs"))
        mine = await _resolve(api)
        assert mine["source"] == "builtin"
        listed = await api.list_all(TEMPLATES)
        assert all(t["source"] == "builtin" for t in listed)
        # My own change does not touch their cached resolution, nor theirs mine.
        await _create(api, body=template_body("Mine"))
        assert (await _resolve(api, headers=api.other))["body"]["summary"] == "Theirs"
        assert (await _resolve(api))["body"]["summary"] == "Mine"
        assert await api.template_rows(tenant_id=api.other_tenant_id) == 1
