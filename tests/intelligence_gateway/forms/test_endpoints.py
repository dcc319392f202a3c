"""The intake forms admin API end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.intelligence_gateway.submissions.test_admin_support import (
    FORMS,
    MISSING_ID,
    AdminApi,
    admin_api,
    assert_error,
)
from tests.platform.special_addresses import PUBLIC, refused_cases
from xynergy.intelligence_gateway.config import IntakeSettings
from xynergy.intelligence_gateway.models import IntakeForm, Submission
from xynergy.platform.config import Settings
from xynergy.platform.db.base import utcnow
from xynergy.platform.db.session import unit_of_work

FIELDS = {
    "id",
    "public_id",
    "kind",
    "name",
    "allowed_origins",
    "webhook_url",
    "active",
    "previous_webhook_secret_expires_at",
    "created_at",
    "updated_at",
}
BOUNDS = IntakeSettings()
PUBLIC_ID = re.compile(r"frm_[A-Za-z0-9_-]{20}")
SECRET = re.compile(r"whsec_[A-Za-z0-9_-]{43}")


@pytest.fixture
def settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    return make_settings(database_url=database_url)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[AdminApi]:
    async with admin_api(settings) as started:
        yield started


# Each case: a field and a value the API must refuse (422), writing nothing.
REFUSED: list[tuple[str, Any]] = [
    ("kind", "newsletter"),
    ("name", ""),
    ("name", "n" * (BOUNDS.form_name_max_chars + 1)),
    ("name", "<script>alert(1)</script>"),
    ("allowed_origins", []),
    ("allowed_origins", [f"https://site{n}.example" for n in range(BOUNDS.form_origins_max + 1)]),
    ("allowed_origins", ["*"]),
    ("allowed_origins", ["https://*.acme.example"]),
    ("allowed_origins", ["null"]),
    ("allowed_origins", ["www.acme.example"]),
    ("allowed_origins", ["ftp://www.acme.example"]),
    ("allowed_origins", ["https://www.acme.example/contact"]),
    ("allowed_origins", ["https://www.acme.example?x=1"]),
    ("allowed_origins", ["https://user@www.acme.example"]),
    ("allowed_origins", ["https://www.acme.example:99999"]),
    ("allowed_origins", ["https://www acme.example"]),
    ("webhook_url", "ftp://hooks.acme.example/x"),
    ("webhook_url", "javascript:alert(1)"),
    ("webhook_url", "https://user:pw@hooks.acme.example/x"),
    ("webhook_url", "https://"),
    ("webhook_url", "https://hooks.acme.example/" + "p" * BOUNDS.webhook_url_max_chars),
    ("unexpected", "field"),
]
PRIVATE_WEBHOOKS = [
    "http://127.0.0.1/hook",
    "http://127.1/hook",
    "http://2130706433/hook",
    "http://0x7f000001/hook",
    "http://0.0.0.0/hook",
    "http://10.1.2.3/hook",
    "http://172.16.0.1/hook",
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://[::1]/hook",
    "http://[fe80::1]/hook",
    "http://[fd00::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://localhost:8080/hook",
    "http://LOCALHOST./hook",
    "http://api.localhost/hook",
    "http://metadata.google.internal/computeMetadata/v1",
    "http://printer.local/hook",
    "http://intranet/hook",
]


class TestCreateForm:
    async def test_creates_and_answers_the_form_with_its_secret(self, api: AdminApi) -> None:
        response = await api.client.post(
            FORMS,
            json={
                "kind": "contact",
                "name": "  Contact us  ",
                "allowed_origins": [
                    "HTTPS://WWW.Acme.Example:443/",
                    "https://www.acme.example",
                    "http://localhost:3000",
                    "http://[::1]:8080",
                    "https://bücher.example",
                ],
                "webhook_url": "https://hooks.acme.example/intake?team=sales",
            },
            headers=api.headers,
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert set(body) == FIELDS | {"webhook_secret"}
        assert PUBLIC_ID.fullmatch(body["public_id"])
        assert SECRET.fullmatch(body["webhook_secret"])
        assert (body["kind"], body["name"], body["active"]) == ("contact", "Contact us", True)
        assert body["allowed_origins"] == [
            "https://www.acme.example",
            "http://localhost:3000",
            "http://[::1]:8080",
            "https://xn--bcher-kva.example",
        ]
        assert body["webhook_url"] == "https://hooks.acme.example/intake?team=sales"
        stored = await api.stored(IntakeForm, body["id"])
        assert (stored.tenant_id, stored.public_id) == (api.tenant_id, body["public_id"])
        assert stored.webhook_secret == body["webhook_secret"]

    async def test_the_secret_is_shown_once_and_never_again(self, api: AdminApi) -> None:
        made = await api.create()
        assert SECRET.fullmatch(made["webhook_secret"])
        fetched = await api.client.get(f"{FORMS}/{made['id']}", headers=api.headers)
        assert set(fetched.json()) == FIELDS
        [listed] = await api.walk(FORMS)
        assert set(listed) == FIELDS
        patched = await api.client.patch(
            f"{FORMS}/{made['id']}", json={"name": "Renamed"}, headers=api.headers
        )
        assert patched.json()["webhook_secret"] is None
        assert made["webhook_secret"] not in (fetched.text + patched.text + str(listed))

    async def test_public_ids_and_secrets_are_unique(self, api: AdminApi) -> None:
        made = [await api.create() for _ in range(5)]
        assert len({form["public_id"] for form in made}) == 5
        assert len({form["webhook_secret"] for form in made}) == 5

    async def test_name_markup_is_removed(self, api: AdminApi) -> None:
        made = await api.create(name="<b>Beta</b> <script>alert(1)</script>list & co")
        assert made["name"] == "Beta list &amp; co"

    async def test_webhook_is_optional(self, api: AdminApi) -> None:
        made = await api.create()
        assert made["webhook_url"] is None

    @pytest.mark.parametrize(("field", "value"), REFUSED)
    async def test_bad_input_is_refused_and_nothing_written(
        self, api: AdminApi, field: str, value: Any
    ) -> None:
        body = {**api.defaults, field: value}
        response = await api.client.post(FORMS, json=body, headers=api.headers)
        assert_error(response, 422, "validation_failed")
        assert await api.count(IntakeForm) == 0

    @pytest.mark.parametrize("url", PRIVATE_WEBHOOKS)
    async def test_private_webhook_addresses_are_refused(self, api: AdminApi, url: str) -> None:
        body = {**api.defaults, "webhook_url": url}
        response = await api.client.post(FORMS, json=body, headers=api.headers)
        assert_error(response, 422, "validation_failed", "webhook_url")
        assert await api.count(IntakeForm) == 0

    async def test_a_read_key_cannot_create(self, api: AdminApi) -> None:
        response = await api.client.post(
            FORMS, json=api.defaults, headers=await api.key("intake:read")
        )
        assert_error(response, 403, "forbidden", "intake:admin")
        assert await api.count(IntakeForm) == 0


class TestCreateFormSettings:
    async def test_private_webhooks_are_allowed_when_configured(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        settings = make_settings(outbox_allow_private_addresses=True)
        async with admin_api(settings, IntakeSettings()) as api:
            made = await api.create(webhook_url="http://127.0.0.1:8123/hook")
            assert made["webhook_url"] == "http://127.0.0.1:8123/hook"

    async def test_production_requires_https(self, make_settings: Callable[..., Settings]) -> None:
        async with admin_api(make_settings(environment="production")) as api:
            for field, value in [
                ("webhook_url", "http://hooks.acme.example/x"),
                ("allowed_origins", ["http://www.acme.example"]),
            ]:
                response = await api.client.post(
                    FORMS, json={**api.defaults, field: value}, headers=api.headers
                )
                assert_error(response, 422, "validation_failed", "https")
            assert await api.count(IntakeForm) == 0
            made = await api.create(webhook_url="https://hooks.acme.example/x")
            assert made["webhook_url"] == "https://hooks.acme.example/x"

    async def test_origin_bound_follows_settings(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with admin_api(make_settings(), IntakeSettings(form_origins_max=2)) as api:
            origins = ["https://a.example", "https://b.example", "https://c.example"]
            response = await api.client.post(
                FORMS, json={**api.defaults, "allowed_origins": origins}, headers=api.headers
            )
            assert_error(response, 422, "validation_failed", "at most 2")
            made = await api.create(allowed_origins=origins[:2])
            assert made["allowed_origins"] == origins[:2]


class TestGetForm:
    async def test_answers_the_form(self, api: AdminApi) -> None:
        made = await api.create()
        response = await api.client.get(f"{FORMS}/{made['id']}", headers=api.headers)
        assert response.status_code == 200, response.text
        assert response.json() == {k: v for k, v in made.items() if k != "webhook_secret"}

    async def test_another_tenants_form_is_not_found(self, api: AdminApi) -> None:
        made = await api.create()
        response = await api.client.get(f"{FORMS}/{made['id']}", headers=api.other)
        assert_error(response, 404, "not_found")

    async def test_unknown_and_malformed_ids(self, api: AdminApi) -> None:
        assert_error(
            await api.client.get(f"{FORMS}/{MISSING_ID}", headers=api.headers), 404, "not_found"
        )
        response = await api.client.get(f"{FORMS}/1%27%20OR%20%271%27=%271", headers=api.headers)
        assert_error(response, 422, "validation_failed")


class TestListForms:
    async def test_walks_every_form_once_newest_first(self, api: AdminApi) -> None:
        made = [(await api.create(name=f"form {n}"))["id"] for n in range(5)]
        assert await api.ids(FORMS) == list(reversed(made))

    async def test_another_tenants_forms_are_never_listed(self, api: AdminApi) -> None:
        mine = await api.create()
        theirs = await api.create(headers=api.other)
        assert await api.ids(FORMS) == [mine["id"]]
        assert [f["id"] for f in await api.walk(FORMS, headers=api.other)] == [theirs["id"]]

    async def test_filters_by_kind_and_active(self, api: AdminApi) -> None:
        beta = await api.create(kind="beta")
        contact = await api.create(kind="contact")
        await api.client.patch(f"{FORMS}/{beta['id']}", json={"active": False}, headers=api.headers)
        assert await api.ids(FORMS, kind="contact") == [contact["id"]]
        assert await api.ids(FORMS, active="false") == [beta["id"]]

    async def test_page_size_is_capped(self, api: AdminApi, settings: Settings) -> None:
        response = await api.client.get(
            FORMS, params={"limit": settings.page_size_max + 1}, headers=api.headers
        )
        assert_error(response, 422, "validation_failed", "limit")


class TestUpdateForm:
    async def test_changes_the_fields_sent(self, api: AdminApi) -> None:
        made = await api.create(webhook_url="https://hooks.acme.example/a")
        response = await api.client.patch(
            f"{FORMS}/{made['id']}",
            json={
                "name": "New name",
                "allowed_origins": ["https://new.acme.example"],
                "active": False,
            },
            headers=api.headers,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["name"], body["allowed_origins"], body["active"]) == (
            "New name",
            ["https://new.acme.example"],
            False,
        )
        assert body["webhook_url"] == "https://hooks.acme.example/a"
        assert body["updated_at"] > made["updated_at"]
        stored = await api.stored(IntakeForm, made["id"])
        assert stored.webhook_secret == made["webhook_secret"]

    async def test_null_webhook_url_removes_the_webhook(self, api: AdminApi) -> None:
        made = await api.create(webhook_url="https://hooks.acme.example/a")
        response = await api.client.patch(
            f"{FORMS}/{made['id']}", json={"webhook_url": None}, headers=api.headers
        )
        assert response.json()["webhook_url"] is None

    async def test_rotation_answers_a_new_secret_once(self, api: AdminApi) -> None:
        made = await api.create()
        response = await api.client.patch(
            f"{FORMS}/{made['id']}", json={"rotate_webhook_secret": True}, headers=api.headers
        )
        assert response.status_code == 200, response.text
        secret = response.json()["webhook_secret"]
        assert SECRET.fullmatch(secret)
        assert secret != made["webhook_secret"]
        assert (await api.stored(IntakeForm, made["id"])).webhook_secret == secret
        again = await api.client.get(f"{FORMS}/{made['id']}", headers=api.headers)
        assert secret not in again.text

    async def test_rotation_keeps_the_previous_secret_for_the_grace_period(
        self, api: AdminApi
    ) -> None:
        made = await api.create()
        assert made["previous_webhook_secret_expires_at"] is None
        before = utcnow()
        response = await api.client.patch(
            f"{FORMS}/{made['id']}", json={"rotate_webhook_secret": True}, headers=api.headers
        )
        body = response.json()
        expires = datetime.fromisoformat(body["previous_webhook_secret_expires_at"])
        grace = timedelta(seconds=BOUNDS.webhook_secret_grace_seconds)
        assert before + grace <= expires <= utcnow() + grace
        stored = await api.stored(IntakeForm, made["id"])
        assert stored.previous_webhook_secret == made["webhook_secret"]
        assert stored.previous_webhook_secret_expires_at == expires
        # Never shown again, by any answer.
        fetched = await api.client.get(f"{FORMS}/{made['id']}", headers=api.headers)
        listed = await api.client.get(FORMS, headers=api.headers)
        for text in (response.text, fetched.text, listed.text):
            assert made["webhook_secret"] not in text
        assert (
            fetched.json()["previous_webhook_secret_expires_at"]
            == (body["previous_webhook_secret_expires_at"])
        )

    async def test_a_second_rotation_replaces_the_previous_secret(self, api: AdminApi) -> None:
        made = await api.create()
        path = f"{FORMS}/{made['id']}"
        first = await api.client.patch(
            path, json={"rotate_webhook_secret": True}, headers=api.headers
        )
        await api.client.patch(path, json={"rotate_webhook_secret": True}, headers=api.headers)
        stored = await api.stored(IntakeForm, made["id"])
        # At most two secrets sign: the oldest is gone.
        assert stored.previous_webhook_secret == first.json()["webhook_secret"]

    async def test_without_a_grace_period_the_old_secret_stops_at_once(
        self, settings: Settings
    ) -> None:
        async with admin_api(settings, IntakeSettings(webhook_secret_grace_seconds=0)) as api:
            made = await api.create()
            response = await api.client.patch(
                f"{FORMS}/{made['id']}", json={"rotate_webhook_secret": True}, headers=api.headers
            )
            assert response.json()["previous_webhook_secret_expires_at"] is None
            stored = await api.stored(IntakeForm, made["id"])
        assert stored.previous_webhook_secret is None
        assert stored.previous_webhook_secret_expires_at is None

    async def test_an_expired_previous_secret_is_dropped_by_the_next_change(
        self, api: AdminApi
    ) -> None:
        made = await api.create()
        path = f"{FORMS}/{made['id']}"
        await api.client.patch(path, json={"rotate_webhook_secret": True}, headers=api.headers)
        async with unit_of_work(api.platform.sessionmaker) as session:
            form = await session.get(IntakeForm, made["id"])
            assert form is not None
            form.previous_webhook_secret_expires_at = utcnow() - timedelta(seconds=1)
        await api.client.patch(path, json={"name": "Renamed"}, headers=api.headers)
        stored = await api.stored(IntakeForm, made["id"])
        assert (stored.previous_webhook_secret, stored.previous_webhook_secret_expires_at) == (
            None,
            None,
        )

    @pytest.mark.parametrize(
        "change",
        [
            {},
            {"name": None},
            {"active": None},
            {"allowed_origins": ["https://*.acme.example"]},
            {"webhook_url": "http://10.0.0.1/hook"},
            {"name": "ok", "webhook_url": "http://localhost/hook"},
            {"public_id": "frm_mine"},
            {"kind": "contact"},
        ],
    )
    async def test_bad_changes_are_refused_and_nothing_changes(
        self, api: AdminApi, change: dict[str, Any]
    ) -> None:
        made = await api.create()
        response = await api.client.patch(f"{FORMS}/{made['id']}", json=change, headers=api.headers)
        assert_error(response, 422, "validation_failed")
        stored = await api.stored(IntakeForm, made["id"])
        assert (stored.name, stored.allowed_origins, stored.webhook_url, stored.public_id) == (
            made["name"],
            made["allowed_origins"],
            made["webhook_url"],
            made["public_id"],
        )

    async def test_another_tenants_form_is_not_found_and_unchanged(self, api: AdminApi) -> None:
        made = await api.create()
        response = await api.client.patch(
            f"{FORMS}/{made['id']}",
            json={"name": "taken over", "rotate_webhook_secret": True},
            headers=api.other,
        )
        assert_error(response, 404, "not_found")
        stored = await api.stored(IntakeForm, made["id"])
        assert (stored.name, stored.webhook_secret) == (made["name"], made["webhook_secret"])

    async def test_a_read_key_cannot_change(self, api: AdminApi) -> None:
        made = await api.create()
        response = await api.client.patch(
            f"{FORMS}/{made['id']}", json={"name": "x"}, headers=await api.key("intake:read")
        )
        assert_error(response, 403, "forbidden")


class TestDeleteForm:
    async def test_deletes_the_form_and_its_submissions(self, api: AdminApi) -> None:
        made = await api.create()
        kept = await api.create()
        await api.add_submission(made["id"])
        await api.add_submission(kept["id"])
        response = await api.client.delete(f"{FORMS}/{made['id']}", headers=api.headers)
        assert response.status_code == 204, response.text
        assert await api.stored(IntakeForm, made["id"]) is None
        assert await api.count(Submission, form_id=made["id"]) == 0
        assert await api.count(Submission, form_id=kept["id"]) == 1
        missing = await api.client.get(f"{FORMS}/{made['id']}", headers=api.headers)
        assert_error(missing, 404, "not_found")

    async def test_another_tenants_form_is_not_found_and_kept(self, api: AdminApi) -> None:
        made = await api.create()
        response = await api.client.delete(f"{FORMS}/{made['id']}", headers=api.other)
        assert_error(response, 404, "not_found")
        assert await api.stored(IntakeForm, made["id"]) is not None

    async def test_a_read_key_cannot_delete(self, api: AdminApi) -> None:
        made = await api.create()
        response = await api.client.delete(
            f"{FORMS}/{made['id']}", headers=await api.key("intake:read")
        )
        assert_error(response, 403, "forbidden")
        assert await api.stored(IntakeForm, made["id"]) is not None


def webhook_at(address: str) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"https://{host}/hooks/intake"


SPECIAL_CASES = refused_cases()


class TestWebhookSpecialPurposeAddresses:
    @pytest.mark.parametrize(
        ("block", "addresses"), SPECIAL_CASES, ids=[label for label, _ in SPECIAL_CASES]
    )
    async def test_create_and_update_refuse_every_special_purpose_range(
        self, api: AdminApi, block: str, addresses: list[str]
    ) -> None:
        made = await api.create(webhook_url="https://hooks.acme.example/intake")
        for address in addresses:
            body = {**api.defaults, "webhook_url": webhook_at(address)}
            created = await api.client.post(FORMS, json=body, headers=api.headers)
            assert_error(created, 422, "validation_failed", "webhook_url")
            patched = await api.client.patch(
                f"{FORMS}/{made['id']}",
                json={"webhook_url": webhook_at(address)},
                headers=api.headers,
            )
            assert_error(patched, 422, "validation_failed", "webhook_url")
        assert await api.count(IntakeForm) == 1
        stored = await api.stored(IntakeForm, made["id"])
        assert stored.webhook_url == "https://hooks.acme.example/intake"

    async def test_public_addresses_are_accepted(self, api: AdminApi) -> None:
        for address in PUBLIC:
            made = await api.create(webhook_url=webhook_at(address))
            assert made["webhook_url"] == webhook_at(address)
