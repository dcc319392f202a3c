"""A key asked for with an unknown scope: 422, and the answer lists the valid ones.

A typo is then fixed from the message alone (the CLI test: tests/test_cli_scopes.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from tests.helpers import auth, issue_key, running
from xynergy.platform.admin_app import create_admin_app
from xynergy.platform.auth.scopes import KNOWN_SCOPES
from xynergy.platform.config import Settings


def listed_scopes(message: str) -> set[str]:
    """The scopes named after "Valid scopes:" (a terminal may wrap the line)."""
    _, _, valid = " ".join(message.split()).partition("Valid scopes: ")
    return set(re.findall(r"[a-z]+(?::[a-z]+)?", valid))


class TestCreateKeyApi:
    async def test_unknown_scope_answer_lists_the_valid_scopes(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        admin_app = create_admin_app(make_settings())
        async with running(admin_app) as client:
            _, manager = await issue_key(
                admin_app.state.platform, tenant="acme", scopes=["keys:admin", "content:read"]
            )
            response = await client.post(
                "/admin/keys",
                json={"name": "typo", "scopes": ["content:raed"]},
                headers=auth(manager.secret),
            )
        assert response.status_code == 422, response.text
        body = response.json()
        assert set(body) == {"error", "detail", "request_id"}
        assert body["detail"].startswith("Unknown scope(s): content:raed. Valid scopes: ")
        assert listed_scopes(body["detail"]) == KNOWN_SCOPES
