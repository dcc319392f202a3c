"""One application per e-mail per form, idempotent retries, and answers that reveal neither."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.intelligence_gateway.intake_api import BETA, CONTACT, ORIGIN, IntakeApi, intake_api
from xynergy.platform.config import Settings


@pytest.fixture
async def api(
    make_settings: Callable[..., Settings], database_url: str
) -> AsyncIterator[IntakeApi]:
    async with intake_api(make_settings(database_url=database_url)) as running_api:
        yield running_api


HOOK = "https://hooks.acme.example/intake"


def comparable(response: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    """Status, body bytes and headers: everything but the request id."""
    headers = sorted((k, v) for k, v in response.headers.items() if k != "x-request-id")
    return response.status_code, response.content, headers


class TestOneApplicationPerEmail:
    async def test_a_known_email_gets_the_same_answer_and_stores_nothing(
        self, api: IntakeApi
    ) -> None:
        form = await api.create_form()
        headers = {"Origin": ORIGIN}
        first = await api.post(BETA, form, api.beta(form), headers=headers)
        again = await api.post(
            BETA,
            form,
            api.beta(form, name="Someone Else", use_case="A completely different use case."),
            headers=headers,
        )
        assert first.status_code == 202, first.text
        assert comparable(again) == comparable(first)
        assert first.headers["x-request-id"] != again.headers["x-request-id"]
        [row] = await api.rows(form)
        assert row.name == "Ada Lovelace"

    async def test_address_case_does_not_make_a_second_applicant(self, api: IntakeApi) -> None:
        form = await api.create_form()
        await api.post(BETA, form, api.beta(form, email="ada@example.com"))
        response = await api.post(BETA, form, api.beta(form, email="ADA@Example.com"))
        assert response.status_code == 202
        assert await api.count(form) == 1

    async def test_the_same_email_may_apply_to_another_form(self, api: IntakeApi) -> None:
        form = await api.create_form()
        other = await api.create_form(tenant="globex")
        await api.post(BETA, form, api.beta(form))
        await api.post(BETA, other, api.beta(other))
        assert (await api.count(form), await api.count(other)) == (1, 1)

    async def test_concurrent_applications_store_one(self, api: IntakeApi) -> None:
        form = await api.create_form()
        responses = await asyncio.gather(
            *(api.post(BETA, form, api.beta(form, name=f"Ada {n}")) for n in range(5))
        )
        assert {comparable(r)[:2] for r in responses} == {(202, b'{"status":"received"}')}
        assert await api.count(form) == 1


class TestIdempotencyKey:
    @pytest.mark.parametrize("kind", ["beta", "contact"])
    async def test_a_retry_with_the_same_key_creates_nothing(
        self, api: IntakeApi, kind: str
    ) -> None:
        form = await api.create_form(kind=kind)
        path, body = (BETA, api.beta(form)) if kind == "beta" else (CONTACT, api.contact(form))
        headers = {"Idempotency-Key": "retry-0001"}
        first = await api.post(path, form, body, headers=headers)
        retry = await api.post(path, form, body, headers=headers)
        assert first.status_code == 202, first.text
        assert comparable(retry) == comparable(first)
        assert await api.count(form) == 1

    async def test_a_used_key_with_another_email_creates_nothing(self, api: IntakeApi) -> None:
        form = await api.create_form()
        headers = {"Idempotency-Key": "retry-0002"}
        first = await api.post(BETA, form, api.beta(form), headers=headers)
        other = await api.post(
            BETA, form, api.beta(form, email="grace@example.com"), headers=headers
        )
        assert comparable(other) == comparable(first)
        [row] = await api.rows(form)
        assert row.email == "ada@example.com"

    async def test_different_keys_are_different_messages(self, api: IntakeApi) -> None:
        form = await api.create_form(kind="contact")
        for key in ("key-0001", "key-0002"):
            response = await api.post(
                CONTACT, form, api.contact(form), headers={"Idempotency-Key": key}
            )
            assert response.status_code == 202
        assert await api.count(form) == 2

    async def test_a_key_belongs_to_its_form(self, api: IntakeApi) -> None:
        form = await api.create_form(kind="contact")
        other = await api.create_form(kind="contact")
        headers = {"Idempotency-Key": "shared-key"}
        await api.post(CONTACT, form, api.contact(form), headers=headers)
        await api.post(CONTACT, other, api.contact(other), headers=headers)
        assert (await api.count(form), await api.count(other)) == (1, 1)

    async def test_the_key_is_stored(self, api: IntakeApi) -> None:
        form = await api.create_form(kind="contact")
        await api.post(CONTACT, form, api.contact(form), headers={"Idempotency-Key": "k-42"})
        [row] = await api.rows(form)
        assert row.idempotency_key == "k-42"


@dataclass(frozen=True)
class Statement:
    verb: str
    table: str
    rows: int  # rows the statement wrote (or read), as the driver counts them


_TABLE = re.compile(r"\b(?:INTO|UPDATE|FROM)\s+\"?(\w+)", re.IGNORECASE)


@contextmanager
def sql_log(engine: AsyncEngine) -> Iterator[list[Statement]]:
    """Every statement ``engine`` runs meanwhile: its verb, first table and row count."""
    seen: list[Statement] = []

    def on_execute(_conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        table = _TABLE.search(statement)
        verb = statement.split(None, 1)[0].upper()
        seen.append(Statement(verb, table.group(1) if table else "", cursor.rowcount))

    event.listen(engine.sync_engine, "after_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "after_cursor_execute", on_execute)


def kinds(log: list[Statement]) -> list[tuple[str, str]]:
    return [(statement.verb, statement.table) for statement in log]


def written(log: list[Statement], verb: str, table: str) -> list[int]:
    return [s.rows for s in log if (s.verb, s.table) == (verb, table)]


class TestKnownEmailCostsTheSame:
    """A new and a known e-mail run the same statements, and both write a submission row,
    so the answer's time (not only its bytes) keeps the secret; bench/intake_timing.py
    measures the time itself."""

    @pytest.mark.parametrize("webhook", [HOOK, None], ids=["webhook", "no-webhook"])
    @pytest.mark.parametrize("idempotency", [False, True], ids=["no-key", "fresh-key"])
    async def test_new_and_known_emails_issue_the_same_statements(
        self, api: IntakeApi, webhook: str | None, idempotency: bool
    ) -> None:
        await api.app.state.outbox.stop()  # only the requests' own statements are logged
        form = await api.create_form(webhook_url=webhook)
        keys = iter(f"key-{n:04}" for n in range(3))

        async def apply(email: str, use_case: str) -> list[Statement]:
            headers = {"Idempotency-Key": next(keys)} if idempotency else None
            body = api.beta(form, email=email, use_case=use_case)
            with sql_log(api.platform.engine) as log:
                response = await api.post(BETA, form, body, headers=headers)
            assert response.status_code == 202, response.text
            return log

        await apply("known@example.com", "The first application of this address.")
        new = await apply("new@example.com", "An address never seen on this form.")
        known = await apply("known@example.com", "The same address applying again.")

        assert kinds(known) == kinds(new)
        # Both write one submission row (a known e-mail's is rewritten unchanged)...
        assert written(new, "INSERT", "intake_submissions") == [1]
        assert written(known, "INSERT", "intake_submissions") == [1]
        # ... and only the outbox statement differs, in what it adds.
        assert written(new, "INSERT", "platform_outbox") == ([1] if webhook else [])
        assert written(known, "INSERT", "platform_outbox") == ([0] if webhook else [])
        assert await api.count(form) == 2
        assert len(await api.outbox()) == (2 if webhook else 0)
