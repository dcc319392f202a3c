"""GET /api/submissions/export.csv: streamed in keyset batches, bounded, formula-safe."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest

from tests.intelligence_gateway.submissions.test_admin_support import (
    EXPORT,
    AdminApi,
    admin_api,
    assert_error,
    statements,
)
from xynergy.intelligence_gateway.config import IntakeSettings
from xynergy.intelligence_gateway.submissions.csv_export import HEADER, safe_cell
from xynergy.platform.config import Settings

DAY = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
BATCH = 2


@pytest.fixture
def settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    return make_settings(database_url=database_url)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[AdminApi]:
    async with admin_api(settings, IntakeSettings(export_batch_rows=BATCH)) as started:
        yield started


def parse(body: bytes) -> list[dict[str, str]]:
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert tuple(rows[0]) == HEADER
    return [dict(zip(HEADER, row, strict=True)) for row in rows[1:]]


async def export(api: AdminApi, **params: str) -> list[dict[str, str]]:
    response = await api.client.get(EXPORT, params=params, headers=api.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="submissions-')
    assert disposition.endswith('.csv"')
    return parse(response.content)


class TestExport:
    async def test_exports_every_row_newest_first_with_a_header(self, api: AdminApi) -> None:
        form = await api.add_form()
        ids = [
            await api.add_submission(
                form,
                created_at=DAY + timedelta(minutes=n),
                company="Engines &amp; Co",
                source="newsletter",
                utm={"utm_source": "mail"},
                spam_reasons=["links", "repeat"],
            )
            for n in range(5)
        ]
        rows = await export(api)
        assert [row["id"] for row in rows] == list(reversed(ids))
        first = rows[-1]
        assert (first["form_id"], first["kind"], first["status"], first["email"]) == (
            form,
            "beta",
            "new",
            "ada@example.com",
        )
        assert datetime.fromisoformat(first["created_at"]) == DAY
        assert (first["company"], first["source"], first["subject"]) == (
            "Engines &amp; Co",
            "newsletter",
            "",
        )
        assert first["utm"] == '{"utm_source": "mail"}'
        assert first["spam_reasons"] == "links; repeat"

    async def test_an_empty_export_is_only_the_header(self, api: AdminApi) -> None:
        assert await export(api) == []

    async def test_reads_in_batches_never_all_at_once(self, api: AdminApi) -> None:
        form = await api.add_form()
        for n in range(2 * BATCH + 1):
            await api.add_submission(form, created_at=DAY + timedelta(seconds=n))
        with statements(api.platform.engine, "FROM intake_submissions") as seen:
            rows = await export(api)
        assert len(rows) == 2 * BATCH + 1
        # Each batch asks for BATCH rows (+1 to see whether more follow).
        assert len(seen) == 3
        assert all("LIMIT" in statement for statement in seen)

    async def test_cells_that_a_spreadsheet_would_evaluate_are_quoted(self, api: AdminApi) -> None:
        form = await api.add_form()
        await api.add_submission(
            form,
            name='=HYPERLINK("https://evil.example","click")',
            company="+1-555-0100",
            subject="-2+3",
            body="@SUM(A1:A9)",
            website="\thttps://evil.example",
            source="\r=cmd|' /C calc'!A0",
            email="a=b@example.com",
        )
        [row] = await export(api)
        assert row["name"] == '\'=HYPERLINK("https://evil.example","click")'
        assert row["company"] == "'+1-555-0100"
        assert row["subject"] == "'-2+3"
        assert row["body"] == "'@SUM(A1:A9)"
        assert row["website"] == "'\thttps://evil.example"
        assert row["source"] == "'\r=cmd|' /C calc'!A0"
        assert row["email"] == "a=b@example.com"

    async def test_same_filters_as_the_list(self, api: AdminApi) -> None:
        beta, contact = await api.add_form(), await api.add_form(kind="contact")
        spam = await api.add_submission(beta, created_at=DAY, status="spam")
        await api.add_submission(beta, created_at=DAY - timedelta(days=3))
        await api.add_submission(contact, kind="contact", created_at=DAY)
        assert [r["id"] for r in await export(api, status="spam")] == [spam]
        assert len(await export(api, kind="beta")) == 2
        assert len(await export(api, since="2026-03-09")) == 2
        assert len(await export(api, form=contact)) == 1

    async def test_another_tenants_rows_are_never_exported(self, api: AdminApi) -> None:
        mine = await api.add_submission(await api.add_form())
        other_form = await api.add_form(tenant_id=api.other_tenant_id)
        await api.add_submission(other_form, tenant_id=api.other_tenant_id)
        assert [row["id"] for row in await export(api)] == [mine]
        assert await export(api, form=other_form) == []

    async def test_bad_filters_are_refused_before_streaming(self, api: AdminApi) -> None:
        response = await api.client.get(EXPORT, params={"status": "x"}, headers=api.headers)
        assert_error(response, 422, "validation_failed")

    async def test_needs_the_read_scope(self, api: AdminApi) -> None:
        response = await api.client.get(EXPORT, headers=await api.key("intake:admin"))
        assert_error(response, 403, "forbidden", "intake:read")


class TestExportBound:
    async def test_stops_at_export_max_rows(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        intake = IntakeSettings(export_batch_rows=BATCH, export_max_rows=3)
        async with admin_api(make_settings(database_url=database_url), intake) as api:
            form = await api.add_form()
            ids = [
                await api.add_submission(form, created_at=DAY + timedelta(seconds=n))
                for n in range(6)
            ]
            rows = await export(api)
            assert [row["id"] for row in rows] == list(reversed(ids))[:3]


class TestSafeCell:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("=1+1", "'=1+1"),
            ("+1", "'+1"),
            ("-1", "'-1"),
            ("@A1", "'@A1"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("plain", "plain"),
            ("a=1", "a=1"),
            ("", ""),
            (None, ""),
            (["=a", "b"], "'=a; b"),
            ({"utm_source": "=x"}, '{"utm_source": "=x"}'),
        ],
    )
    def test_quotes_formula_triggers_only(self, value: object, expected: str) -> None:
        assert safe_cell(value) == expected
