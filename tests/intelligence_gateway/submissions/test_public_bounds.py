"""Every field of the public intake at and over its bound; bad bodies write nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.intelligence_gateway.intake_api import BETA, CONTACT, IntakeApi, intake_api
from xynergy.intelligence_gateway.config import IntakeSettings
from xynergy.intelligence_gateway.form_tokens import TOKEN_MAX_CHARS
from xynergy.platform.config import Settings

BOUNDS = IntakeSettings()


def email_of_length(length: int) -> str:
    """A syntactically valid address of exactly ``length`` characters."""
    remaining = length - len("a" * 64 + "@" + ".com")
    labels: list[str] = []
    while remaining > 0:
        take = min(63, remaining)
        if remaining - take == 1:  # a lone dot would be left over: take one less
            take -= 1
        labels.append("b" * take)
        remaining -= take + 1  # the label and the dot after it
    address = "a" * 64 + "@" + ".".join(labels) + ".com"
    assert len(address) == length
    return address


def url_of_length(length: int) -> str:
    prefix = "https://acme.example/"
    return prefix + "p" * (length - len(prefix))


@dataclass(frozen=True)
class Bound:
    """``field`` of a ``kind`` form: ``at`` is accepted, ``over`` refused."""

    kind: str
    field: str
    at: Any
    over: Any

    def __str__(self) -> str:
        return f"{self.kind}-{self.field}"


CASES = [
    Bound("beta", "name", "n" * BOUNDS.name_max_chars, "n" * (BOUNDS.name_max_chars + 1)),
    Bound("beta", "name", "n", "   "),
    Bound(
        "beta",
        "email",
        email_of_length(BOUNDS.email_max_chars),
        email_of_length(BOUNDS.email_max_chars + 1),
    ),
    Bound("beta", "company", "c" * BOUNDS.company_max_chars, "c" * (BOUNDS.company_max_chars + 1)),
    Bound(
        "beta",
        "website",
        url_of_length(BOUNDS.website_max_chars),
        url_of_length(BOUNDS.website_max_chars + 1),
    ),
    Bound(
        "beta",
        "use_case",
        "u" * BOUNDS.use_case_max_chars,
        "u" * (BOUNDS.use_case_max_chars + 1),
    ),
    Bound(
        "beta",
        "use_case",
        "u" * BOUNDS.use_case_min_chars,
        " " + "u" * (BOUNDS.use_case_min_chars - 1) + " ",
    ),
    *(
        Bound(
            "beta",
            field,
            "t" * BOUNDS.tracking_max_chars,
            "t" * (BOUNDS.tracking_max_chars + 1),
        )
        for field in (
            "source",
            "utm_source",
            "utm_medium",
            "utm_campaign",
            "utm_term",
            "utm_content",
        )
    ),
    Bound("beta", "nickname", "", "h" * (BOUNDS.tracking_max_chars + 1)),
    Bound("beta", "form_token", None, "t" * (TOKEN_MAX_CHARS + 1)),
    Bound(
        "contact", "subject", "s" * BOUNDS.subject_max_chars, "s" * (BOUNDS.subject_max_chars + 1)
    ),
    Bound(
        "contact",
        "message",
        "m" * BOUNDS.message_max_chars,
        "m" * (BOUNDS.message_max_chars + 1),
    ),
    Bound("contact", "message", "m" * max(1, BOUNDS.message_min_chars), ""),
]


@pytest.fixture
async def api(
    make_settings: Callable[..., Settings], database_url: str
) -> AsyncIterator[IntakeApi]:
    async with intake_api(make_settings(database_url=database_url)) as running_api:
        yield running_api


def body_for(api: IntakeApi, kind: str, form: Any, **fields: Any) -> dict[str, Any]:
    return api.beta(form, **fields) if kind == "beta" else api.contact(form, **fields)


class TestFieldBounds:
    @pytest.mark.parametrize("case", CASES, ids=str)
    async def test_at_the_bound_is_stored_and_over_it_is_422(
        self, api: IntakeApi, case: Bound
    ) -> None:
        form = await api.create_form(kind=case.kind)
        path = BETA if case.kind == "beta" else CONTACT

        over = await api.post(path, form, body_for(api, case.kind, form, **{case.field: case.over}))
        assert over.status_code == 422, over.text
        assert over.json()["error"] == "validation_failed"
        assert f"body.{case.field}" in over.json()["detail"]
        assert await api.count() == 0

        at = await api.post(path, form, body_for(api, case.kind, form, **{case.field: case.at}))
        assert at.status_code == 202, at.text
        assert await api.count() == 1

    async def test_configured_bounds_apply(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        intake = IntakeSettings(use_case_min_chars=3, use_case_max_chars=20, name_max_chars=5)
        async with intake_api(make_settings(database_url=database_url), intake) as api:
            form = await api.create_form()
            for fields, status in [
                ({"use_case": "abc", "name": "12345"}, 202),
                ({"use_case": "ab"}, 422),
                ({"use_case": "u" * 21}, 422),
                ({"name": "123456"}, 422),
            ]:
                response = await api.post(BETA, form, api.beta(form, **fields))
                assert response.status_code == status, (fields, response.text)
            assert await api.count() == 1

    async def test_text_that_outgrows_its_column_when_escaped_is_422(self, api: IntakeApi) -> None:
        form = await api.create_form()
        # 200 characters, but each no-break space is stored as "&nbsp;" (6 characters).
        name = "a" + "\u00a0" * (BOUNDS.name_max_chars - 2) + "a"
        response = await api.post(BETA, form, api.beta(form, name=name))
        assert response.status_code == 422, response.text
        assert "body.name" in response.json()["detail"]
        assert await api.count() == 0

    @pytest.mark.parametrize(
        ("key", "status"),
        [
            ("k" * BOUNDS.idempotency_key_max_chars, 202),
            ("k" * (BOUNDS.idempotency_key_max_chars + 1), 422),
            ("has space", 422),
        ],
    )
    async def test_idempotency_key_bound(self, api: IntakeApi, key: str, status: int) -> None:
        form = await api.create_form()
        response = await api.post(BETA, form, api.beta(form), headers={"Idempotency-Key": key})
        assert response.status_code == status, response.text
        assert await api.count() == (1 if status == 202 else 0)


class TestRefusedBodies:
    async def test_malformed_json_is_400(self, api: IntakeApi) -> None:
        form = await api.create_form()
        response = await api.client.post(
            BETA,
            params={"form": form.public_id},
            content=b'{"name": "Ada",',
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "malformed_json"
        assert await api.count() == 0

    @pytest.mark.parametrize(
        "content_type",
        [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/json; charset=latin-1",
            None,
        ],
    )
    async def test_other_content_types_are_415(
        self, api: IntakeApi, content_type: str | None
    ) -> None:
        form = await api.create_form()
        headers = {"Content-Type": content_type} if content_type else {}
        response = await api.client.post(
            BETA,
            params={"form": form.public_id},
            content=b'{"name": "Ada"}',
            headers=headers,
        )
        assert response.status_code == 415, response.text
        assert response.json()["error"] == "unsupported_media_type"
        assert await api.count() == 0

    async def test_json_with_utf8_charset_is_accepted(self, api: IntakeApi) -> None:
        form = await api.create_form()
        response = await api.client.post(
            BETA,
            params={"form": form.public_id},
            json=api.beta(form),
            headers={"Content-Type": "application/json; charset=UTF-8"},
        )
        assert response.status_code == 202, response.text

    async def test_oversized_declared_body_is_413(self, api: IntakeApi) -> None:
        form = await api.create_form()
        padding = "x" * 200_000  # larger than any valid submission, under the platform cap
        response = await api.post(BETA, form, api.beta(form, use_case=padding))
        assert response.status_code == 413, response.text
        assert response.json()["error"] == "payload_too_large"
        assert await api.count() == 0

    async def test_oversized_streamed_body_is_413(self, api: IntakeApi) -> None:
        form = await api.create_form()

        async def chunks() -> Any:
            yield b'{"name": "'
            for _ in range(50):
                yield b"x" * 10_000
            yield b'"}'

        response = await api.client.post(
            BETA,
            params={"form": form.public_id},
            content=chunks(),
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 413, response.text
        assert await api.count() == 0

    @pytest.mark.parametrize(
        ("body", "located"),
        [
            ({"unexpected": "field"}, "body.unexpected"),
            ({"name": 5}, "body.name"),
            ({"name": "Ada\x00"}, "body.name"),
            ({"use_case": "line one\nline two\x07"}, "body.use_case"),
            ({"website": "javascript:alert(1)"}, "body.website"),
            ({"website": "https://acme.example/<script>"}, "body.website"),
            ({"name": None}, "body.name"),
        ],
    )
    async def test_invalid_fields_are_422(
        self, api: IntakeApi, body: dict[str, Any], located: str
    ) -> None:
        form = await api.create_form()
        response = await api.post(BETA, form, api.beta(form, **body))
        assert response.status_code == 422, response.text
        assert located in response.json()["detail"]
        assert await api.count() == 0

    async def test_a_body_that_is_not_an_object_is_422(self, api: IntakeApi) -> None:
        form = await api.create_form()
        response = await api.post(BETA, form, ["Ada"])
        assert response.status_code == 422, response.text
        assert await api.count() == 0

    async def test_a_missing_required_field_is_422(self, api: IntakeApi) -> None:
        form = await api.create_form()
        body = api.beta(form)
        del body["use_case"]
        response = await api.post(BETA, form, body)
        assert response.status_code == 422, response.text
        assert "body.use_case: Field required" in response.json()["detail"]
        assert await api.count() == 0


class TestEmail:
    @pytest.mark.parametrize(
        ("given", "stored"),
        [
            ("  ada@example.com ", "ada@example.com"),
            ("Ada@Example.COM", "Ada@example.com"),
            ("first.last+tag@sub.example.co.uk", "first.last+tag@sub.example.co.uk"),
            ("o'brien@example.org", "o'brien@example.org"),
            ("ada@bücher.example", "ada@xn--bcher-kva.example"),
        ],
    )
    async def test_valid_addresses_are_normalised(
        self, api: IntakeApi, given: str, stored: str
    ) -> None:
        form = await api.create_form()
        response = await api.post(BETA, form, api.beta(form, email=given))
        assert response.status_code == 202, response.text
        [row] = await api.rows(form)
        assert row.email == stored

    @pytest.mark.parametrize(
        "given",
        [
            "plainaddress",
            "@example.com",
            "ada@",
            "ada@example",
            "ada@@example.com",
            "ada..lovelace@example.com",
            ".ada@example.com",
            "ada@-example.com",
            "ada@example..com",
            "ada@example.c",
            "ada@example.123",
            "ada lovelace@example.com",
            '"ada"@example.com',
            "ada@[127.0.0.1]",
            "a" * 65 + "@example.com",
            "<ada@example.com>",
        ],
    )
    async def test_invalid_addresses_are_422(self, api: IntakeApi, given: str) -> None:
        form = await api.create_form()
        response = await api.post(BETA, form, api.beta(form, email=given))
        assert response.status_code == 422, response.text
        assert "body.email" in response.json()["detail"]
        assert await api.count() == 0
