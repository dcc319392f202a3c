"""``xynergy keys create`` with an unknown scope: one line listing the valid scopes, exit 1."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from tests.platform.tenancy.test_unknown_scopes import listed_scopes
from xynergy.cli import app as cli_app
from xynergy.platform.auth.scopes import KNOWN_SCOPES


class TestCreateKeyCli:
    def test_unknown_scope_message_lists_the_valid_scopes(self, tmp_path: Path) -> None:
        runner = CliRunner(
            env={
                "XYNERGY_DATA_DIR": str(tmp_path / "data"),
                "XYNERGY_DATABASE_URL": None,
                "XYNERGY_ENVIRONMENT": None,
                "NO_COLOR": "1",
                "COLUMNS": "120",
            }
        )
        assert runner.invoke(cli_app, ["migrate"]).exit_code == 0
        tenant = runner.invoke(cli_app, ["tenants", "create", "acme", "--json"])
        tenant_id = re.search(r'"id": "([0-9a-f]+)"', tenant.stdout)
        assert tenant_id is not None, tenant.output

        result = runner.invoke(
            cli_app, ["keys", "create", "--tenant", tenant_id[1], "--scopes", "content:raed"]
        )
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        assert "content:raed" in result.output
        assert listed_scopes(result.output) == KNOWN_SCOPES
