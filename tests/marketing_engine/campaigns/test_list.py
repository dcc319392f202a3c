"""The campaign list: cursor pages, filters, page-size cap."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.marketing_engine.campaigns.harness import CAMPAIGNS, MarketingApi


class TestListCampaigns:
    async def test_page_walking_returns_every_campaign_once_newest_first(
        self, api: MarketingApi
    ) -> None:
        created = [(await api.generated(name=f"Campaign {n}"))["id"] for n in range(5)]
        listed = await api.list_all()
        assert [c["id"] for c in listed] == list(reversed(created))
        assert "steps" not in listed[0]

    async def test_filters_by_status_and_business_type(self, api: MarketingApi) -> None:
        saas = await api.generated()
        shop = await api.generated(business_type="ecommerce")
        assert (await api.action(saas["id"], "approve")).status_code == 200
        approved = await api.list_all(status="approved")
        assert [c["id"] for c in approved] == [saas["id"]]
        shops = await api.list_all(business_type="ecommerce")
        assert [c["id"] for c in shops] == [shop["id"]]
        assert await api.list_all(status="active") == []

    async def test_filters_by_creation_time(self, api: MarketingApi) -> None:
        first = await api.generated()
        middle = datetime.now(UTC).isoformat()
        second = await api.generated()
        after = await api.list_all(created_after=middle)
        before = await api.list_all(created_before=middle)
        assert [c["id"] for c in after] == [second["id"]]
        assert [c["id"] for c in before] == [first["id"]]

    async def test_bad_filters_and_page_sizes_are_refused(self, api: MarketingApi) -> None:
        for params in (
            {"status": "paused"},
            {"limit": 0},
            {"limit": 10_000},
            {"created_after": "2027-01-01T00:00:00"},
        ):
            response = await api.client.get(CAMPAIGNS, params=params, headers=api.headers)
            assert response.status_code == 422, params
        forged = await api.client.get(CAMPAIGNS, params={"cursor": "nope"}, headers=api.headers)
        assert forged.status_code == 400
