"""Reading one secret from ``NAME`` or ``NAME_FILE``: bounded, newline-stripped, redacted."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from xynergy.intelligence_gateway.config import IntakeSettings
from xynergy.platform.config import Settings
from xynergy.platform.secrets import SecretError, read_secret

SECRET = "s3cr3t-value-that-must-never-show-up-anywhere"


class TestReadSecret:
    def test_from_the_environment(self) -> None:
        loaded = read_secret("DEMO_KEY", max_bytes=1024, environ={"DEMO_KEY": SECRET})
        assert loaded is not None
        assert loaded.value.get_secret_value() == SECRET
        assert (loaded.origin, loaded.source) == ("env", "DEMO_KEY")

    def test_from_a_file_without_its_trailing_newline(self, tmp_path: Path) -> None:
        path = tmp_path / "key"
        path.write_text(SECRET + "\n")
        loaded = read_secret("DEMO_KEY", max_bytes=1024, environ={"DEMO_KEY_FILE": str(path)})
        assert loaded is not None
        assert loaded.value.get_secret_value() == SECRET
        assert (loaded.origin, loaded.source, loaded.path) == ("file", "DEMO_KEY_FILE", path)

    def test_neither_set_is_none(self) -> None:
        assert read_secret("DEMO_KEY", max_bytes=1024, environ={}) is None

    def test_both_set_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "key"
        path.write_text(SECRET)
        env = {"DEMO_KEY": SECRET, "DEMO_KEY_FILE": str(path)}
        with pytest.raises(SecretError, match="DEMO_KEY or DEMO_KEY_FILE, not both") as caught:
            read_secret("DEMO_KEY", max_bytes=1024, environ=env)
        assert SECRET not in str(caught.value)

    def test_a_file_beyond_the_bound_is_refused_unread(self, tmp_path: Path) -> None:
        path = tmp_path / "key"
        path.write_text(SECRET * 100)
        with pytest.raises(SecretError, match="larger than 64 bytes") as caught:
            read_secret("DEMO_KEY", max_bytes=64, environ={"DEMO_KEY_FILE": str(path)})
        assert SECRET not in str(caught.value)

    @pytest.mark.parametrize(
        ("content", "why"), [(b"", "is empty"), (b"\n", "is empty"), (b"\xff\xfe", "not UTF-8")]
    )
    def test_unusable_files_are_refused(self, tmp_path: Path, content: bytes, why: str) -> None:
        path = tmp_path / "key"
        path.write_bytes(content)
        with pytest.raises(SecretError, match=why):
            read_secret("DEMO_KEY", max_bytes=64, environ={"DEMO_KEY_FILE": str(path)})

    def test_a_missing_file_names_the_secret_and_path(self, tmp_path: Path) -> None:
        env = {"DEMO_KEY_FILE": str(tmp_path / "absent")}
        with pytest.raises(SecretError, match="DEMO_KEY: cannot read .*absent"):
            read_secret("DEMO_KEY", max_bytes=64, environ=env)

    def test_repr_never_shows_the_value(self) -> None:
        loaded = read_secret("DEMO_KEY", max_bytes=1024, environ={"DEMO_KEY": SECRET})
        assert SECRET not in repr(loaded)
        assert SECRET not in str(loaded)


class TestSettingsFromFiles:
    def test_internal_token_secret_from_its_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = tmp_path / "internal"
        path.write_text(SECRET + "\n")
        monkeypatch.setenv("XYNERGY_INTERNAL_TOKEN_SECRET_FILE", str(path))
        settings = Settings(data_dir=tmp_path)
        assert settings.internal_token_secret is not None
        assert settings.internal_token_secret.get_secret_value() == SECRET

    def test_both_forms_set_is_refused_without_the_value(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = tmp_path / "internal"
        path.write_text(SECRET)
        monkeypatch.setenv("XYNERGY_INTERNAL_TOKEN_SECRET_FILE", str(path))
        monkeypatch.setenv("XYNERGY_INTERNAL_TOKEN_SECRET", SECRET)
        with pytest.raises(ValidationError, match="not both") as caught:
            Settings(data_dir=tmp_path)
        assert SECRET not in str(caught.value)
        assert SECRET not in repr(caught.value)

    def test_the_file_bound_is_a_setting(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = tmp_path / "internal"
        path.write_text(SECRET)
        monkeypatch.setenv("XYNERGY_INTERNAL_TOKEN_SECRET_FILE", str(path))
        monkeypatch.setenv("XYNERGY_SECRET_FILE_MAX_BYTES", "64")
        Settings(data_dir=tmp_path)
        path.write_text(SECRET * 2)
        with pytest.raises(ValidationError, match="larger than 64 bytes"):
            Settings(data_dir=tmp_path)

    def test_a_service_secret_from_its_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = tmp_path / "form-token"
        path.write_text(SECRET + "\n")
        monkeypatch.setenv("XYNERGY_INTAKE_FORM_TOKEN_SECRET_FILE", str(path))
        secret = IntakeSettings().form_token_secret
        assert secret is not None
        assert secret.get_secret_value() == SECRET
