"""Listings of what has data (services, routes) and grouped series: bounded, busiest
first, operators only, and each group's series the same as the series filtered to it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from tests.helpers import auth, issue_key, running
from tests.platform_dashboard.rollup_apps import traffic_app
from tests.platform_dashboard.test_series import (
    HOUR,
    HOUR_MINUTE,
    operator_headers,
    request_row,
    values,
    window,
)
from xynergy.platform.config import Settings
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.rollups.models import RATE_LIMIT_ROLLUPS, REQUEST_ROLLUPS
from xynergy.platform.runtime import Platform

GROUPED = "/api/metrics/series/grouped"
SERVICES = "/api/metrics/services"
ROUTES = "/api/metrics/routes"
SPAN = window(HOUR, HOUR + timedelta(minutes=15))
# (service, route, minute offset, requests, latency): b's /x is the busiest route, a the
# busiest service; /metrics exists in both services and stays two groups.
TRAFFIC = [
    ("a", "/x", 1, 10, 0.002),
    ("a", "/y", 2, 9, 0.400),
    ("a", "/metrics", 6, 8, 0.002),
    ("b", "/x", 1, 12, 0.050),
    ("b", "/x", 11, 4, 0.002),
    ("b", "/metrics", 7, 3, 0.002),
    ("c", "/z", 3, 1, 0.002),
]


def _row(service: str, route: str, minute: int, requests: int, latency: float) -> dict[str, Any]:
    row = request_row(HOUR_MINUTE + minute, "r1", requests, latency)
    row.update(service=service, route=route)
    return row


async def _fill(platform: Platform) -> None:
    async with unit_of_work(platform.sessionmaker) as session:
        await session.execute(insert(REQUEST_ROLLUPS), [_row(*entry) for entry in TRAFFIC])


async def _get(client: httpx.AsyncClient, path: str, headers: dict[str, str], **params: Any) -> Any:
    response = await client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


class TestListings:
    async def test_services_and_routes_come_busiest_first_within_the_limit(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        app = traffic_app(make_settings(database_url=database_url))
        async with running(app) as client:
            await _fill(app.state.platform)
            headers = await operator_headers(app.state.platform)
            services = await _get(client, SERVICES, headers, **SPAN)
            top_two = await _get(client, SERVICES, headers, limit=2, **SPAN)
            routes = await _get(client, ROUTES, headers, limit=3, **SPAN)
            of_a = await _get(client, ROUTES, headers, service="a", **SPAN)
        assert [(i["service"], i["requests"]) for i in services["items"]] == [
            ("a", 27),
            ("b", 19),
            ("c", 1),
        ]
        assert services["more"] is False
        first = services["items"][0]
        # request_row counts one 5xx a row: a has three rows.
        assert first["errors_5xx"] == 3
        assert first["error_rate"] == pytest.approx(3 / 27)
        assert 256 <= first["latency_p99_ms"] < 512
        assert [i["service"] for i in top_two["items"]] == ["a", "b"]
        assert top_two["more"] is True
        assert [(i["service"], i["route"], i["requests"]) for i in routes["items"]] == [
            ("b", "/x", 16),
            ("a", "/x", 10),
            ("a", "/y", 9),
        ]
        assert routes["more"] is True
        assert [i["route"] for i in of_a["items"]] == ["/x", "/y", "/metrics"]

    async def test_listings_are_bounded_and_for_operators_only(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        app = traffic_app(make_settings(metrics_listing_max_items=5))
        async with running(app) as client:
            headers = await operator_headers(app.state.platform)
            _, tenant_key = await issue_key(
                app.state.platform, tenant="acme", scopes=["metrics:read"]
            )
            too_many = await client.get(SERVICES, params={"limit": 6}, headers=headers)
            tenant = [
                (await client.get(path, headers=auth(tenant_key.secret))).status_code
                for path in (SERVICES, ROUTES, "/api/metrics/cache-namespaces")
            ]
            grouped = await client.get(
                GROUPED,
                params={"metric": "requests", "group_by": "route"},
                headers=auth(tenant_key.secret),
            )
        assert too_many.status_code == 422
        assert "at most 5" in too_many.json()["detail"]
        assert tenant == [403, 403, 403]
        assert grouped.status_code == 403


class TestGroupedSeries:
    @pytest.mark.parametrize("metric", ["requests", "errors_5xx", "latency_p99", "error_rate"])
    async def test_each_group_equals_the_series_filtered_to_it(
        self, make_settings: Callable[..., Settings], database_url: str, metric: str
    ) -> None:
        app = traffic_app(make_settings(database_url=database_url))
        async with running(app) as client:
            await _fill(app.state.platform)
            headers = await operator_headers(app.state.platform)
            grouped = await _get(
                client, GROUPED, headers, metric=metric, group_by="route", limit=4, step=300,
                **SPAN,
            )  # fmt: skip
            singles = [
                await values(client, headers, metric=metric, step=300, **series["group"], **SPAN)
                for series in grouped["series"]
            ]
            whole = await values(client, headers, metric="requests", step=300, **SPAN)
        groups = [(s["group"]["service"], s["group"]["route"]) for s in grouped["series"]]
        assert groups == [("b", "/x"), ("a", "/x"), ("a", "/y"), ("a", "/metrics")]
        assert [s["volume"] for s in grouped["series"]] == [16, 10, 9, 8]
        assert grouped["more"] is True
        for series, single in zip(grouped["series"], singles, strict=True):
            assert [point["value"] for point in series["points"]] == single
            assert len(series["points"]) == 3
        if metric == "requests":
            # The shown groups add up to the whole less the groups left out (b /metrics, c /z).
            shown = [sum(p["value"] for p in s["points"]) for s in grouped["series"]]
            assert sum(shown) == sum(whole) - 3 - 1

    async def test_rejections_group_by_tenant_with_public_requests_as_null(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        app = traffic_app(make_settings(database_url=database_url))
        async with running(app) as client:
            platform: Platform = app.state.platform
            acme, _ = await issue_key(platform, tenant="acme", scopes=["metrics:read"])
            rows = [
                dict(minute=HOUR_MINUTE + 1, replica_id="r", service="s", route="/p",
                     rate_class="public", tenant_id=None, rejections=7),
                dict(minute=HOUR_MINUTE + 2, replica_id="r", service="s", route="/k",
                     rate_class="reads", tenant_id=acme, rejections=3),
            ]  # fmt: skip
            async with unit_of_work(platform.sessionmaker) as session:
                await session.execute(insert(RATE_LIMIT_ROLLUPS), rows)
            headers = await operator_headers(platform)
            grouped = await _get(
                client, GROUPED, headers, metric="rate_limit_rejections", group_by="tenant",
                step=900, **SPAN,
            )  # fmt: skip
        assert [(s["group"], s["volume"]) for s in grouped["series"]] == [
            ({"tenant": None}, 7),
            ({"tenant": acme}, 3),
        ]
        assert [s["points"][0]["value"] for s in grouped["series"]] == [7, 3]

    @pytest.mark.parametrize(
        ("params", "fragment"),
        [
            ({"metric": "requests", "group_by": "route", "limit": 11}, "at most 10"),
            ({"metric": "requests", "group_by": "namespace"}, "cannot be grouped by"),
            ({"metric": "cache_hits", "group_by": "namespace", "step": 90}, "minutes"),
        ],
        ids=["too_many_series", "foreign_group", "bad_step"],
    )
    async def test_bad_groupings_answer_422(
        self, make_settings: Callable[..., Settings], params: dict[str, Any], fragment: str
    ) -> None:
        app = traffic_app(make_settings())
        async with running(app) as client:
            headers = await operator_headers(app.state.platform)
            response = await client.get(GROUPED, params=params, headers=headers)
        assert response.status_code == 422, response.text
        assert fragment in response.json()["detail"]
