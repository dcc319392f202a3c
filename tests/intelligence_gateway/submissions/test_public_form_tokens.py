"""Form tokens: signed per form, dated, and keyed from settings or the internal secret."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.intelligence_gateway.intake_api import BETA, intake_api
from xynergy.intelligence_gateway.config import IntakeSettings
from xynergy.intelligence_gateway.form_tokens import FormTokens
from xynergy.platform.auth.internal_tokens import resolve_internal_secrets
from xynergy.platform.config import Settings

NOW = 1_800_000_000.0
INTAKE = IntakeSettings(form_token_min_fill_seconds=3, form_token_max_age_seconds=3600)


def tokens(*secrets: bytes, intake: IntakeSettings = INTAKE) -> FormTokens:
    return FormTokens.from_settings(intake, secrets or (b"internal-secret",), leeway_seconds=5)


class TestCheck:
    def test_a_token_is_good_between_the_fill_time_and_the_max_age(self) -> None:
        token = tokens().issue("frm_a", now=NOW)
        assert tokens().problem(token, "frm_a", now=NOW + 3) is None
        assert tokens().problem(token, "frm_a", now=NOW + 3600) is None

    @pytest.mark.parametrize(
        ("after", "problem"),
        [(0, "too_fast"), (2.9, "too_fast"), (3601, "token_expired"), (-6, "token_invalid")],
    )
    def test_timing(self, after: float, problem: str) -> None:
        token = tokens().issue("frm_a", now=NOW)
        assert tokens().problem(token, "frm_a", now=NOW + after) == problem

    def test_a_token_is_for_one_form(self) -> None:
        token = tokens().issue("frm_a", now=NOW)
        assert tokens().problem(token, "frm_b", now=NOW + 10) == "token_invalid"

    @pytest.mark.parametrize(
        "token",
        ["", None, "v1", "v1.1.2.3", "v2.1.abc", "v1.x.abc", "v1.1.ÿ", "v1." + "9" * 16 + ".a"],
    )
    def test_malformed_tokens(self, token: str | None) -> None:
        expected = "token_missing" if not token else "token_invalid"
        assert tokens().problem(token, "frm_a", now=NOW) == expected

    def test_another_key_does_not_verify(self) -> None:
        token = tokens(b"one").issue("frm_a", now=NOW)
        assert tokens(b"two").problem(token, "frm_a", now=NOW + 10) == "token_invalid"

    def test_a_previous_internal_secret_still_verifies(self) -> None:
        token = tokens(b"old").issue("frm_a", now=NOW)
        assert tokens(b"new", b"old").problem(token, "frm_a", now=NOW + 10) is None

    def test_a_configured_secret_replaces_the_derived_one(self) -> None:
        configured = IntakeSettings(form_token_secret=SecretStr("form-secret-" + "x" * 32))
        token = tokens(b"internal", intake=configured).issue("frm_a", now=NOW)
        assert tokens(b"other", intake=configured).problem(token, "frm_a", now=NOW + 10) is None
        assert tokens(b"internal").problem(token, "frm_a", now=NOW + 10) == "token_invalid"

    def test_the_derived_key_is_not_the_internal_secret(self) -> None:
        assert tokens(b"internal").keys != (b"internal",)


class TestDevelopmentSecret:
    async def test_without_configured_secrets_tokens_use_the_generated_dev_secret(
        self, make_settings: Callable[..., Settings], tmp_path: Path
    ) -> None:
        settings = make_settings(internal_token_secret=None)
        intake = IntakeSettings(form_token_min_fill_seconds=0)
        async with intake_api(settings, intake) as api:
            form = await api.create_form()
            issued = (await api.client.get(f"/api/forms/{form.public_id}/token")).json()
            derived = FormTokens.from_settings(
                intake, resolve_internal_secrets(settings), leeway_seconds=5
            )
            assert derived.problem(issued["token"], form.public_id, now=time.time()) is None
            response = await api.post(BETA, form, api.beta(form, form_token=issued["token"]))
            assert response.status_code == 202
            [row] = await api.rows(form)
            assert row.status == "new"
