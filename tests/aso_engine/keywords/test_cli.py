"""``xynergy aso import-keywords`` against a real SQLite data dir."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from xynergy.cli import app

_UNSET = ("XYNERGY_DATABASE_URL", "XYNERGY_REDIS_URL", "XYNERGY_ENVIRONMENT")
ROWS = "phrase,locale,tags\nHello  World,en-us,a|b\nhello world,en-US,\nnew,en-GB,\n"


class Cli:
    def __init__(self, data_dir: Path) -> None:
        env: dict[str, str | None] = {name: None for name in _UNSET}
        env.update({"XYNERGY_DATA_DIR": str(data_dir), "NO_COLOR": "1", "COLUMNS": "200"})
        self.runner = CliRunner(env=env)
        self.data_dir = data_dir

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(app, list(args), catch_exceptions=True)

    def stored(self) -> int:
        with sqlite3.connect(self.data_dir / "xynergy.db") as connection:
            return int(connection.execute("SELECT count(*) FROM aso_keywords").fetchone()[0])


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    runner = Cli(tmp_path / "data")
    assert runner("migrate").exit_code == 0
    return runner


@pytest.fixture
def tenant_id(cli: Cli) -> str:
    return str(json.loads(cli("tenants", "create", "acme", "--json").stdout)["id"])


class TestImportKeywords:
    def test_imports_a_csv_and_prints_the_report(
        self, cli: Cli, tenant_id: str, tmp_path: Path
    ) -> None:
        path = tmp_path / "keywords.csv"
        path.write_text(ROWS)
        result = cli("aso", "import-keywords", str(path), "--tenant", tenant_id, "--json")
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert (report["received"], report["inserted"], report["duplicates_in_file"]) == (3, 2, 1)
        assert cli.stored() == 2

    def test_ndjson_with_default_locale(self, cli: Cli, tenant_id: str, tmp_path: Path) -> None:
        path = tmp_path / "keywords.jsonl"
        path.write_text('{"phrase": "one"}\n{"phrase": "two"}\n')
        result = cli(
            "aso", "import-keywords", str(path), "--tenant", tenant_id, "--locale", "de-de"
        )
        assert result.exit_code == 0, result.output
        assert cli.stored() == 2

    def test_all_or_nothing_with_a_bad_row_writes_nothing(
        self, cli: Cli, tenant_id: str, tmp_path: Path
    ) -> None:
        path = tmp_path / "keywords.csv"
        path.write_text(ROWS + "bad,not a locale,\n")
        result = cli("aso", "import-keywords", str(path), "--tenant", tenant_id, "--json")
        assert result.exit_code == 1
        assert json.loads(result.stdout)["rejections"][0]["line"] == 5
        assert cli.stored() == 0
        best = cli(
            "aso", "import-keywords", str(path), "--tenant", tenant_id, "--mode", "best_effort"
        )
        assert best.exit_code == 0, best.output
        assert cli.stored() == 2

    def test_unknown_tenant_fails(self, cli: Cli, tmp_path: Path) -> None:
        path = tmp_path / "keywords.csv"
        path.write_text(ROWS)
        result = cli("aso", "import-keywords", str(path), "--tenant", "0" * 32)
        assert result.exit_code == 1
        assert "not_found" in result.stderr
        assert cli.stored() == 0

    def test_unknown_file_type_is_refused(self, cli: Cli, tenant_id: str, tmp_path: Path) -> None:
        path = tmp_path / "keywords.txt"
        path.write_text(ROWS)
        result = cli("aso", "import-keywords", str(path), "--tenant", tenant_id)
        assert result.exit_code == 2
