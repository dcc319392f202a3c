"""docs/settings.md and .env.example: generated from the settings models, never stale.

The models are discovered (every ``BaseSettings`` subclass in the package), every
setting carries a description, and ``.env.example`` is proven loadable: its
values, set in the environment, give back every model's defaults.
"""

from __future__ import annotations

import os
import shlex
import textwrap
from pathlib import Path
from typing import Literal

import pytest
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from xynergy.aso_engine.config import AsoSettings
from xynergy.platform.config import Settings
from xynergy.reference import discover_settings, generate, render_settings_markdown
from xynergy.reference.documents import ENV_EXAMPLE, SETTINGS_REFERENCE
from xynergy.reference.settings import render_env_example, setting_docs

ROOT = Path(__file__).resolve().parents[2]
SERVICE_MODELS = {
    "xynergy.platform.config.Settings",
    "xynergy.aso_engine.config.AsoSettings",
    "xynergy.ai_routing.config.AiSettings",
    "xynergy.marketing_engine.config.MarketingSettings",
    "xynergy.intelligence_gateway.config.IntakeSettings",
}


def _name(model: type[BaseSettings]) -> str:
    return f"{model.__module__}.{model.__qualname__}"


@pytest.fixture(scope="module")
def models() -> list[type[BaseSettings]]:
    return discover_settings()


class TestDiscovery:
    def test_finds_the_platform_and_every_service(self, models: list[type[BaseSettings]]) -> None:
        assert SERVICE_MODELS <= {_name(model) for model in models}
        assert models[0] is Settings

    def test_finds_a_model_in_a_new_package(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        package = tmp_path / "newpkg"
        (package / "reports").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "reports" / "__init__.py").write_text("")
        (package / "reports" / "config.py").write_text(
            textwrap.dedent(
                """
                from pydantic import Field
                from xynergy.aso_engine.config import AsoSettings

                class ReportSettings(AsoSettings):  # a subclass of a subclass counts too
                    rows_max: int = Field(default=5, description="Rows.")
                """
            )
        )
        monkeypatch.syspath_prepend(str(tmp_path))
        found = discover_settings("newpkg")
        assert [_name(model) for model in found] == ["newpkg.reports.config.ReportSettings"]


class TestDescriptions:
    def test_every_setting_has_a_description(self, models: list[type[BaseSettings]]) -> None:
        missing = [
            f"{doc.env_name} ({_name(model)})"
            for model in models
            for doc in setting_docs(model)
            if not doc.description
        ]
        assert not missing, "add description= to: " + ", ".join(missing)


class TestCurrent:
    @pytest.mark.parametrize("path", [SETTINGS_REFERENCE, ENV_EXAMPLE], ids=str)
    def test_committed_file_matches_the_models(
        self, path: Path, models: list[type[BaseSettings]]
    ) -> None:
        generated = next(f for f in generate(ROOT, apps={}, models=models) if f.path == path)
        assert not generated.is_stale, f"run `make reference`:\n{generated.diff()}"

    def test_a_new_setting_makes_both_files_stale(self, models: list[type[BaseSettings]]) -> None:
        class GrownAsoSettings(AsoSettings):
            """Bounds and TTLs of the ASO Engine."""

            brand_new_max: int = Field(default=7, ge=1, le=9, description="A new bound.")

        # Same names as the real model: the new field is the only difference.
        GrownAsoSettings.__name__ = GrownAsoSettings.__qualname__ = AsoSettings.__name__
        GrownAsoSettings.__module__ = AsoSettings.__module__
        grown = [GrownAsoSettings if model is AsoSettings else model for model in models]
        files = {f.path: f for f in generate(ROOT, apps={}, models=grown)}
        for path in (SETTINGS_REFERENCE, ENV_EXAMPLE):
            added = [
                line
                for line in files[path].diff().splitlines()
                if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))
            ]
            assert added, path
            assert all(line.startswith("+") for line in added), added
            assert "XYNERGY_ASO_BRAND_NEW_MAX" in "".join(added)


class _Sample(BaseSettings):
    """A model exercising every kind of cell."""

    model_config = SettingsConfigDict(env_prefix="XYNERGY_SAMPLE_")

    level: Literal["low", "high"] = Field(default="low", description="How much.")
    prefix: str = Field(default="x:", min_length=1, max_length=8, description="Key prefix.")
    ratio: float = Field(default=0.5, gt=0, lt=1, description="A | fraction.")
    token: SecretStr | None = Field(default=SecretStr("hunter2"), description="Signs things.")
    origins: list[str] = Field(default_factory=lambda: ["https://a b"], description="Origins.")
    url: str | None = Field(default=None, description="Somewhere.")


class TestRendering:
    def test_markdown_rows(self) -> None:
        text = render_settings_markdown([_Sample])
        assert "## `XYNERGY_SAMPLE_*`: _Sample" in text
        assert '| `XYNERGY_SAMPLE_LEVEL` | "low" \\| "high" | `low` |  | How much. |' in text
        assert (
            "| `XYNERGY_SAMPLE_PREFIX` | str | `x:` | length >= 1, length <= 8 | Key prefix. |"
            in text
        )
        assert "| `XYNERGY_SAMPLE_RATIO` | float | `0.5` | > 0, < 1 | A \\| fraction. |" in text
        assert "| `XYNERGY_SAMPLE_URL` | str \\| None | unset |  | Somewhere. |" in text

    def test_secrets_are_never_shown(self) -> None:
        for text in (render_settings_markdown([_Sample]), render_env_example([_Sample])):
            assert "hunter2" not in text
        assert "# XYNERGY_SAMPLE_TOKEN=\n" in render_env_example([_Sample])

    def test_env_example_entries(self) -> None:
        text = render_env_example([_Sample])
        assert "# Key prefix. (str, length >= 1, length <= 8)\n# XYNERGY_SAMPLE_PREFIX=x:\n" in text
        assert "# XYNERGY_SAMPLE_ORIGINS='[\"https://a b\"]'\n" in text
        assert "# Somewhere. (str | None, unset by default)\n# XYNERGY_SAMPLE_URL=\n" in text

    def test_a_default_computed_by_a_function_is_not_one_machines_value(self) -> None:
        data_dir = next(d for d in setting_docs(Settings) if d.env_name == "XYNERGY_DATA_DIR")
        assert data_dir.is_computed
        assert data_dir.default == ""
        assert str(Path.home()) not in (ROOT / SETTINGS_REFERENCE).read_text()
        assert str(Path.home()) not in (ROOT / ENV_EXAMPLE).read_text()


def _example_values() -> dict[str, str]:
    """Every ``# XYNERGY_X=value`` of .env.example with a value, unquoted as a shell would."""
    values = {}
    for line in (ROOT / ENV_EXAMPLE).read_text().splitlines():
        assignment = line.removeprefix("# ")
        name, sep, raw = assignment.partition("=")
        if sep and name.startswith("XYNERGY_") and " " not in name and raw:
            values[name] = "".join(shlex.split(raw))
    return values


class TestEnvExampleLoads:
    def test_every_variable_is_listed_once(self, models: list[type[BaseSettings]]) -> None:
        lines = (ROOT / ENV_EXAMPLE).read_text().splitlines()
        assignments = [line.partition("=")[0] for line in lines if line.startswith("# XYNERGY_")]
        expected = [f"# {doc.env_name}" for model in models for doc in setting_docs(model)]
        assert assignments == expected

    def test_its_values_give_back_every_default(
        self, models: list[type[BaseSettings]], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for name in [name for name in os.environ if name.startswith("XYNERGY_")]:
            monkeypatch.delenv(name)
        defaults = {_name(model): model().model_dump() for model in models}
        for name, value in _example_values().items():
            monkeypatch.setenv(name, value)
        loaded = {_name(model): model().model_dump() for model in models}
        assert loaded == defaults
        assert len(_example_values()) > 100  # the check above compared real values
