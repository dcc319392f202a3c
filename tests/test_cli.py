"""The ``xynergy`` command line against a real SQLite data dir.

Plain (sync) tests: every command runs its own event loop with ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import os
import re
import socket
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from click.testing import Result
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import async_sessionmaker
from typer.testing import CliRunner

from tests.live_server import CLI_TIMEOUT_SECONDS, free_port, xynergy_command
from xynergy.cli import app
from xynergy.migrations.models import Base
from xynergy.platform.admin_app import PLATFORM_SLUG
from xynergy.platform.auth.keys import hash_key
from xynergy.platform.auth.verifier import KeyVerifier
from xynergy.platform.config import Settings
from xynergy.platform.db.engine import create_engine_from_settings
from xynergy.platform.db.migrate import alembic_config
from xynergy.platform.exceptions import Unauthorized
from xynergy.platform.tenancy import service as tenancy_service
from xynergy.server import SERVICES

KEY_PATTERN = re.compile(r"xyn_(?:live|test)_[0-9A-Za-z]{49}")
# Every XYNERGY_* setting the command should not pick up from the outer environment.
_UNSET = ("XYNERGY_DATABASE_URL", "XYNERGY_REDIS_URL", "XYNERGY_ENVIRONMENT")


@dataclass
class Cli:
    """Runs ``xynergy`` commands on one data dir and keeps every byte they print."""

    runner: CliRunner
    data_dir: Path
    printed: list[str]

    def __call__(self, *args: str, ok: bool = True) -> Result:
        result = self.runner.invoke(app, list(args), catch_exceptions=True)
        self.printed += [result.stdout, result.stderr]
        if ok:
            assert result.exit_code == 0, (args, result.output, result.exception)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)

    @property
    def settings(self) -> Settings:
        database = self.data_dir / "xynergy.db"
        return Settings(data_dir=self.data_dir, database_url=f"sqlite+aiosqlite:///{database}")

    def verify(self, secret: str) -> bool:
        """Whether a fresh replica would accept ``secret`` (no cache)."""

        async def run() -> bool:
            engine = create_engine_from_settings(self.settings)
            verifier = KeyVerifier(
                self.settings, async_sessionmaker(engine, expire_on_commit=False), None
            )
            try:
                await verifier.verify(secret)
                return True
            except Unauthorized:
                return False
            finally:
                await engine.dispose()

        return asyncio.run(run())


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    data_dir = tmp_path / "data"
    env: dict[str, str | None] = {name: None for name in _UNSET}
    # 80 columns: nothing the CLI prints may be cut or folded to the terminal's width.
    env.update({"XYNERGY_DATA_DIR": str(data_dir), "NO_COLOR": "1", "COLUMNS": "80"})
    runner = CliRunner(env=env)
    return Cli(runner, data_dir, [])


@pytest.fixture
def migrated(cli: Cli) -> Cli:
    cli("migrate")
    return cli


@pytest.fixture
def tenant_id(migrated: Cli) -> str:
    return str(migrated.json("tenants", "create", "acme")["id"])


def _assert_no_hash_printed(cli: Cli, *secrets: str) -> None:
    everything = "\n".join(cli.printed)
    for secret in secrets:
        assert hash_key(secret) not in everything


class TestMigrate:
    def test_creates_the_schema_in_the_data_dir(self, cli: Cli) -> None:
        result = cli("migrate")
        database = cli.data_dir / "xynergy.db"
        assert database.exists()
        assert str(database) in result.stdout

        async def tables() -> set[str]:
            engine = create_engine_from_settings(cli.settings)
            try:
                async with engine.connect() as connection:
                    return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
            finally:
                await engine.dispose()

        assert asyncio.run(tables()) >= set(Base.metadata.tables)

    def test_is_idempotent(self, cli: Cli) -> None:
        cli("migrate")
        cli("migrate")


class TestBootstrap:
    def test_prints_one_admin_key_once(self, migrated: Cli) -> None:
        first = migrated.json("bootstrap")
        secret = first["secret"]
        assert KEY_PATTERN.fullmatch(secret)
        assert first["key"]["scopes"] == ["admin"]
        assert migrated.verify(secret)

        again = migrated("bootstrap", "--json")
        assert KEY_PATTERN.search(again.stdout) is None
        assert secret not in again.stdout
        plain = migrated("bootstrap")
        assert KEY_PATTERN.search(plain.stdout) is None
        _assert_no_hash_printed(migrated, secret)

    def test_creates_the_operator_tenant(self, migrated: Cli) -> None:
        created = migrated.json("bootstrap")
        tenants = migrated.json("tenants", "list")["items"]
        assert [t["id"] for t in tenants] == [created["key"]["tenant_id"]]

    def test_issues_a_new_admin_key_after_the_last_one_is_revoked(self, migrated: Cli) -> None:
        first = migrated.json("bootstrap")
        tenant = first["key"]["tenant_id"]
        migrated.json("keys", "revoke", first["key"]["id"], "--tenant", tenant)
        second = migrated.json("bootstrap")
        assert second["key"]["tenant_id"] == tenant
        assert second["secret"] != first["secret"]
        assert migrated.verify(second["secret"])
        assert not migrated.verify(first["secret"])


class TestTenants:
    def test_create_prints_the_tenant(self, migrated: Cli) -> None:
        tenant = migrated.json("tenants", "create", "acme")
        assert set(tenant) == {"id", "name", "created_at"}
        assert tenant["name"] == "acme"

    def test_duplicate_name_fails_cleanly(self, migrated: Cli, tenant_id: str) -> None:
        result = migrated("tenants", "create", "acme", ok=False)
        assert result.exit_code != 0
        assert "already exists" in result.output
        assert "Traceback" not in result.output
        assert len(migrated.json("tenants", "list")["items"]) == 1

    def test_list_pages_newest_first(self, migrated: Cli) -> None:
        created = [migrated.json("tenants", "create", f"t{n}")["id"] for n in range(3)]
        first = migrated.json("tenants", "list", "--limit", "2")
        assert [t["id"] for t in first["items"]] == created[:0:-1]
        assert first["next_cursor"]
        rest = migrated.json("tenants", "list", "--limit", "2", "--cursor", first["next_cursor"])
        assert [t["id"] for t in rest["items"]] == [created[0]]
        assert rest["next_cursor"] is None

    def test_garbage_cursor_fails_cleanly(self, migrated: Cli) -> None:
        result = migrated("tenants", "list", "--cursor", "garbage!", ok=False)
        assert result.exit_code != 0
        assert "cursor" in result.output
        assert "Traceback" not in result.output


class TestKeys:
    def test_create_prints_the_secret_once_and_list_never(
        self, migrated: Cli, tenant_id: str
    ) -> None:
        created = migrated.json("keys", "create", "--tenant", tenant_id, "--scopes", "content:read")
        secret = created["secret"]
        assert KEY_PATTERN.fullmatch(secret)
        assert created["key"]["tenant_id"] == tenant_id
        assert created["key"]["scopes"] == ["content:read"]
        assert migrated.verify(secret)

        listing = migrated("keys", "list", "--tenant", tenant_id, "--json")
        items = json.loads(listing.stdout)["items"]
        assert [k["id"] for k in items] == [created["key"]["id"]]
        assert secret not in listing.stdout
        assert "key_hash" not in listing.stdout
        table = migrated("keys", "list", "--tenant", tenant_id)
        assert secret not in table.stdout
        assert created["key"]["id"] in table.stdout
        _assert_no_hash_printed(migrated, secret)

    def test_plain_create_prints_the_secret(self, migrated: Cli, tenant_id: str) -> None:
        result = migrated("keys", "create", "--tenant", tenant_id, "--scopes", "content:read")
        secrets = KEY_PATTERN.findall(result.stdout)
        assert len(secrets) == 1
        assert migrated.verify(secrets[0])
        _assert_no_hash_printed(migrated, secrets[0])

    def test_unknown_scope_fails_without_a_traceback(self, migrated: Cli, tenant_id: str) -> None:
        result = migrated(
            "keys", "create", "--tenant", tenant_id, "--scopes", "content:read,nope", ok=False
        )
        assert result.exit_code != 0
        assert "nope" in result.output
        assert "Traceback" not in result.output
        assert KEY_PATTERN.search(result.output) is None
        assert json.loads(migrated("keys", "list", "--tenant", tenant_id, "--json").stdout) == {
            "items": [],
            "next_cursor": None,
        }

    def test_unknown_tenant_fails_cleanly(self, migrated: Cli) -> None:
        result = migrated(
            "keys", "create", "--tenant", "f" * 32, "--scopes", "content:read", ok=False
        )
        assert result.exit_code != 0
        assert "Traceback" not in result.output
        assert KEY_PATTERN.search(result.output) is None

    def test_rotate_with_zero_grace_replaces_the_key(self, migrated: Cli, tenant_id: str) -> None:
        old = migrated.json("keys", "create", "--tenant", tenant_id, "--scopes", "content:read")
        old_id = old["key"]["id"]

        new = migrated.json("keys", "rotate", old_id, "--tenant", tenant_id, "--grace-seconds", "0")

        assert new["key"]["rotated_from"] == old_id
        assert new["secret"] != old["secret"]
        assert not migrated.verify(old["secret"])
        assert migrated.verify(new["secret"])
        listed = {k["id"]: k for k in migrated.json("keys", "list", "--tenant", tenant_id)["items"]}
        assert listed[old_id]["grace_until"] is not None
        assert listed[new["key"]["id"]]["rotated_from"] == old_id
        _assert_no_hash_printed(migrated, old["secret"], new["secret"])

    def test_rotate_keeps_the_old_key_during_the_default_grace(
        self, migrated: Cli, tenant_id: str
    ) -> None:
        old = migrated.json("keys", "create", "--tenant", tenant_id, "--scopes", "content:read")
        new = migrated.json("keys", "rotate", old["key"]["id"], "--tenant", tenant_id)
        assert migrated.verify(old["secret"])
        assert migrated.verify(new["secret"])

    def test_revoke_sets_revoked_at(self, migrated: Cli, tenant_id: str) -> None:
        created = migrated.json("keys", "create", "--tenant", tenant_id, "--scopes", "content:read")
        key_id = created["key"]["id"]

        revoked = migrated.json("keys", "revoke", key_id, "--tenant", tenant_id)

        assert revoked["id"] == key_id
        assert revoked["revoked_at"] is not None
        assert not migrated.verify(created["secret"])
        again = migrated.json("keys", "revoke", key_id, "--tenant", tenant_id)
        assert again["revoked_at"] == revoked["revoked_at"]
        _assert_no_hash_printed(migrated, created["secret"])

    def test_revoke_with_redis_down_still_revokes_and_warns(
        self, migrated: Cli, tenant_id: str
    ) -> None:
        created = migrated.json("keys", "create", "--tenant", tenant_id, "--scopes", "content:read")
        with socket.socket() as probe:  # a loopback port nothing listens on
            probe.bind(("127.0.0.1", 0))
            closed_port = probe.getsockname()[1]
        result = migrated.runner.invoke(
            app,
            ["keys", "revoke", created["key"]["id"], "--tenant", tenant_id, "--json"],
            env={"XYNERGY_REDIS_URL": f"redis://127.0.0.1:{closed_port}/0"},
        )
        assert result.exit_code == 0, (result.output, result.exception)
        assert json.loads(result.stdout)["revoked_at"] is not None
        assert result.stderr.startswith("warning: Redis did not take the broadcast")
        assert not migrated.verify(created["secret"])

    def test_revoke_of_another_tenants_key_is_not_found(
        self, migrated: Cli, tenant_id: str
    ) -> None:
        created = migrated.json("keys", "create", "--tenant", tenant_id, "--scopes", "content:read")
        other = migrated.json("tenants", "create", "other")["id"]
        result = migrated("keys", "revoke", created["key"]["id"], "--tenant", other, ok=False)
        assert result.exit_code != 0
        assert "Traceback" not in result.output
        assert migrated.verify(created["secret"])


# --- issue 11: a CLI that works from anywhere --------------------------------------


def _one_line_error(result: Result, *, exit_code: int = 1) -> str:
    """The error a command printed: one line on stderr, an exit code, no exception."""
    # CliRunner swallows an escaped exception (no traceback in the output to look
    # for): SystemExit is what typer.Exit becomes, anything else escaped.
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == exit_code, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert result.stdout == ""
    return lines[0]


class TestVersion:
    def test_prints_the_package_version(self, cli: Cli) -> None:
        result = cli("--version")
        assert result.stdout.strip() == f"xynergy {importlib.metadata.version('xynergy')}"


class TestUnmigratedDatabase:
    @pytest.mark.parametrize(
        "command",
        [
            ("tenants", "list"),
            ("tenants", "create", "acme"),
            ("bootstrap",),
            ("bootstrap", "--new-key"),
            ("keys", "list", "--tenant", "operator"),
            ("keys", "create", "--tenant", "operator", "--scopes", "admin"),
            ("keys", "revoke", "k", "--tenant", "operator"),
        ],
    )
    def test_a_missing_database_says_run_migrate_and_is_not_created(
        self, cli: Cli, command: tuple[str, ...]
    ) -> None:
        line = _one_line_error(cli(*command, ok=False))
        assert "run `xynergy migrate`" in line
        assert str(cli.data_dir / "xynergy.db") in line
        assert not (cli.data_dir / "xynergy.db").exists()

    def test_an_empty_database_says_run_migrate(self, cli: Cli) -> None:
        cli.data_dir.mkdir(parents=True)
        sqlite3.connect(cli.data_dir / "xynergy.db").close()
        line = _one_line_error(cli("tenants", "list", ok=False))
        assert "has no tables yet: run `xynergy migrate`" in line

    def test_a_database_behind_the_code_says_run_migrate(self, cli: Cli) -> None:
        cli.data_dir.mkdir(parents=True)
        command.upgrade(alembic_config(cli.settings.resolved_database_url), "0001")
        line = _one_line_error(cli("tenants", "list", ok=False))
        assert "revision 0001" in line
        assert "run `xynergy migrate`" in line
        cli("migrate")
        cli("tenants", "list")

    def test_serve_refuses_to_start_and_says_run_migrate(self, tmp_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("XYNERGY_")}
        env["XYNERGY_DATA_DIR"] = str(tmp_path / "data")
        # Without the check the server would start; the timeout bounds the test then.
        served = subprocess.run(  # noqa: S603 - our own CLI
            [*xynergy_command(), "serve", "--host", "127.0.0.1", "--port", str(free_port())],
            env=env,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_SECONDS,
            check=False,
        )
        assert served.returncode == 1
        assert served.stderr.splitlines() == [
            f"error: the database at {tmp_path / 'data' / 'xynergy.db'} does not exist yet: "
            "run `xynergy migrate`"
        ]


class TestBadSettings:
    @pytest.mark.parametrize(
        ("variable", "value", "problem"),
        [
            ("XYNERGY_PORT", "abc", "valid integer"),
            ("XYNERGY_DATABASE_POOL_SIZE", "0", "greater than or equal to 1"),
            ("XYNERGY_CACHE_TTLS", "{not json", "not valid JSON"),
            ("XYNERGY_TRUSTED_PROXIES", "nowhere", "network"),
        ],
    )
    def test_names_the_variable_and_the_problem_in_one_line(
        self, migrated: Cli, variable: str, value: str, problem: str
    ) -> None:
        result = migrated.runner.invoke(app, ["tenants", "list"], env={variable: value})
        line = _one_line_error(result)
        assert f"{variable}: " in line
        assert problem in line

    def test_a_check_across_settings_keeps_its_message(self, migrated: Cli) -> None:
        result = migrated.runner.invoke(
            app, ["tenants", "list"], env={"XYNERGY_ENVIRONMENT": "production"}
        )
        assert "XYNERGY_INTERNAL_TOKEN_SECRET" in _one_line_error(result)

    def test_a_service_setting_is_named_with_its_prefix(
        self, migrated: Cli, tenant_id: str, tmp_path: Path
    ) -> None:
        path = tmp_path / "keywords.csv"
        path.write_text("phrase,locale\nhello,en-US\n")
        result = migrated.runner.invoke(
            app,
            ["aso", "import-keywords", str(path), "--tenant", tenant_id],
            env={"XYNERGY_ASO_KEYWORD_TAGS_MAX": "many"},
        )
        assert "XYNERGY_ASO_KEYWORD_TAGS_MAX: " in _one_line_error(result)


class TestUnexpectedErrors:
    def test_one_line_with_how_to_get_the_traceback(
        self, migrated: Cli, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async def broken(*_args: object, **_kwargs: object) -> None:
            raise RuntimeError("a bug\nwith a second line")

        monkeypatch.setattr(tenancy_service, "list_tenants", broken)
        line = _one_line_error(migrated.runner.invoke(app, ["tenants", "list"]))
        assert "RuntimeError: a bug" in line
        assert "XYNERGY_DEBUG=1" in line

        debug = migrated.runner.invoke(app, ["tenants", "list"], env={"XYNERGY_DEBUG": "1"})
        assert isinstance(debug.exception, RuntimeError)

    def test_an_unreachable_database_is_one_line_naming_it(self, cli: Cli) -> None:
        unreachable = f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none"
        env = {"XYNERGY_DATABASE_URL": unreachable}
        line = _one_line_error(cli.runner.invoke(app, ["tenants", "list"], env=env))
        assert line.startswith("error: database_unavailable: ")

    def test_an_unknown_service_lists_the_valid_ones(self, migrated: Cli) -> None:
        line = _one_line_error(migrated("serve", "--service", "nope", ok=False), exit_code=2)
        assert "'nope'" in line
        for slug in (*SERVICES, PLATFORM_SLUG):
            assert slug in line


class TestJsonOutput:
    def test_every_data_command_prints_one_json_document_at_80_columns(self, migrated: Cli) -> None:
        long_name = "n" * 200
        assert set(migrated.json("migrate")) == {"database", "revision"}
        admin = migrated.json("bootstrap")
        assert migrated.json("bootstrap") == {"key": None, "secret": None}
        tenant = migrated.json("tenants", "create", long_name)
        assert tenant["name"] == long_name
        assert migrated.json("tenants", "list")["items"][0]["name"] == long_name
        key = migrated.json("keys", "create", "--tenant", tenant["id"], "--scopes", "content:read")
        listed = migrated.json("keys", "list", "--tenant", tenant["id"])["items"]
        assert [k["id"] for k in listed] == [key["key"]["id"]]
        rotated = migrated.json("keys", "rotate", key["key"]["id"], "--tenant", tenant["id"])
        assert rotated["key"]["rotated_from"] == key["key"]["id"]
        revoked = migrated.json("keys", "revoke", rotated["key"]["id"], "--tenant", tenant["id"])
        assert revoked["revoked_at"] is not None
        assert admin["key"]["scopes"] == ["admin"]


class TestPlainOutput:
    def test_tenants_create_prints_labelled_lines_not_a_dict(self, migrated: Cli) -> None:
        out = migrated("tenants", "create", "acme").stdout
        tenant_id = migrated.json("tenants", "list")["items"][0]["id"]
        assert out.splitlines() == ["tenant:  acme", f"id:      {tenant_id}"]

    def test_ids_are_never_cut_at_80_columns(self, migrated: Cli) -> None:
        tenant = migrated.json("tenants", "create", "a-tenant-with-a-rather-long-name" * 3)
        keys = [
            migrated.json("keys", "create", "--tenant", tenant["id"], "--scopes", scopes)["key"]
            for scopes in ("content:read,content:write,keywords:read,keywords:write", "ai:usage")
        ]
        tenants = migrated("tenants", "list").stdout
        assert any(line.startswith(tenant["id"] + " ") for line in tenants.splitlines())
        listing = migrated("keys", "list", "--tenant", tenant["id"]).stdout.splitlines()
        assert listing[0].split() == ["ID", "NAME", "KEY", "SCOPES", "STATE"]
        assert {line.split()[0] for line in listing[1:]} == {k["id"] for k in keys}
        assert "content:read,content:write,keywords:read,keywords:write" in listing[2]

    def test_an_issued_key_prints_its_full_ids(self, migrated: Cli, tenant_id: str) -> None:
        out = migrated("keys", "create", "--tenant", tenant_id, "--scopes", "content:read").stdout
        key_id = migrated.json("keys", "list", "--tenant", tenant_id)["items"][0]["id"]
        assert f"key id:  {key_id}" in out.splitlines()
        assert f"tenant:  {tenant_id}" in out.splitlines()
        assert not re.search(r"[{}]|'\w+':", out)


class TestTenantReference:
    def test_operator_names_the_operator_tenant(self, migrated: Cli) -> None:
        operator = migrated.json("bootstrap")["key"]["tenant_id"]
        created = migrated.json("keys", "create", "--tenant", "operator", "--scopes", "admin")
        assert created["key"]["tenant_id"] == operator
        assert migrated.verify(created["secret"])

    def test_a_tenant_name_works_where_an_id_does(self, migrated: Cli, tenant_id: str) -> None:
        created = migrated.json("keys", "create", "--tenant", "acme", "--scopes", "content:read")
        assert created["key"]["tenant_id"] == tenant_id
        assert migrated.json("keys", "list", "--tenant", "acme")["items"][0]["tenant_id"] == (
            tenant_id
        )

    def test_an_id_wins_over_the_alias_and_the_alias_over_a_name(self, migrated: Cli) -> None:
        operator = migrated.json("bootstrap")["key"]["tenant_id"]
        first = migrated.json("tenants", "create", "first")["id"]
        # A tenant whose name is another tenant's id, and one named like the alias.
        migrated.json("tenants", "create", first)
        migrated.json("tenants", "create", "operator")
        by_id = migrated.json("keys", "create", "--tenant", first, "--scopes", "content:read")
        assert by_id["key"]["tenant_id"] == first
        alias = migrated.json("keys", "create", "--tenant", "operator", "--scopes", "admin")
        assert alias["key"]["tenant_id"] == operator

    def test_operator_before_bootstrap_says_run_bootstrap(self, migrated: Cli) -> None:
        result = migrated("keys", "create", "--tenant", "operator", "--scopes", "admin", ok=False)
        assert "run `xynergy bootstrap`" in _one_line_error(result)

    def test_an_unknown_reference_is_not_found(self, migrated: Cli) -> None:
        result = migrated("keys", "list", "--tenant", "nobody", ok=False)
        assert "not_found" in _one_line_error(result)


class TestLostAdminKey:
    def test_bootstrap_new_key_issues_another_admin_key(self, migrated: Cli) -> None:
        lost = migrated.json("bootstrap")
        recovered = migrated.json("bootstrap", "--new-key")
        assert recovered["key"]["tenant_id"] == lost["key"]["tenant_id"]
        assert recovered["key"]["scopes"] == ["admin"]
        assert recovered["secret"] != lost["secret"]
        assert migrated.verify(recovered["secret"])
        operator_keys = migrated.json("keys", "list", "--tenant", "operator")["items"]
        assert len(operator_keys) == 2

    def test_bootstrap_new_key_on_a_fresh_database_bootstraps(self, migrated: Cli) -> None:
        first = migrated.json("bootstrap", "--new-key")
        assert first["key"]["scopes"] == ["admin"]
        assert migrated.json("bootstrap") == {"key": None, "secret": None}


class TestFromAnotherDirectory:
    """The issue's acceptance: a real ``xynergy`` process with XYNERGY_DATA_DIR unset."""

    def test_works_from_any_directory_and_writes_nothing_there(self, tmp_path: Path) -> None:
        workdir, data_home = tmp_path / "elsewhere", tmp_path / "data-home"
        workdir.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("XYNERGY_")}
        env |= {"XDG_DATA_HOME": str(data_home), "COLUMNS": "80", "NO_COLOR": "1"}

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(  # noqa: S603 - our own CLI
                [*xynergy_command(), *args],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=CLI_TIMEOUT_SECONDS,
                check=False,
            )

        before = run("tenants", "list")
        assert before.returncode == 1
        assert before.stderr.count("\n") == 1, before.stderr
        assert "run `xynergy migrate`" in before.stderr
        assert "Traceback" not in before.stderr
        for args in (("migrate",), ("bootstrap",), ("tenants", "create", "x")):
            done = run(*args)
            assert done.returncode == 0, (args, done.stderr)
        assert "tenant:  x" in done.stdout
        assert "x" in run("tenants", "list").stdout.split()
        assert list(workdir.iterdir()) == []
        assert (data_home / "xynergy" / "xynergy.db").is_file()


class TestDataDir:
    def test_defaults_to_the_user_data_dir_whatever_the_working_dir(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("XYNERGY_DATA_DIR")
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
        monkeypatch.chdir(tmp_path)
        assert Settings().data_dir == tmp_path / "share" / "xynergy"
        assert Settings().resolved_database_url.endswith(f"{tmp_path}/share/xynergy/xynergy.db")

    def test_xynergy_data_dir_wins_and_expands_home(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("XYNERGY_DATA_DIR", "~/elsewhere")
        assert Settings().data_dir == Path.home() / "elsewhere"

    def test_the_suite_never_touches_the_real_user_data_dir(self) -> None:
        real = Path.home() / ".local" / "share"
        assert not Settings().data_dir.is_relative_to(real)
        assert not Path(os.environ["XDG_DATA_HOME"]).is_relative_to(real)


class TestInfo:
    def test_says_where_the_data_is_and_whether_to_migrate(self, cli: Cli) -> None:
        before = cli.json("info")
        assert before["data_dir"] == str(cli.data_dir)
        assert before["database"] == str(cli.data_dir / "xynergy.db")
        assert "run `xynergy migrate`" in before["schema"]
        assert not cli.data_dir.exists()
        cli("migrate")
        assert cli.json("info")["schema"] == "current"
        assert f"data dir:  {cli.data_dir}" in cli("info").stdout.splitlines()
