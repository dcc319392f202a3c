"""Settings refuse unsafe values and read the environment."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from pydantic import ValidationError

from xynergy.platform.config import DEFAULT_RATE_LIMITS, Settings


class TestDefaults:
    def test_embedded_defaults(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("XYNERGY_DATABASE_URL", raising=False)
        settings = Settings(data_dir=tmp_path)
        assert settings.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path}/xynergy.db"
        assert settings.redis_url is None
        assert settings.cors_origins == []
        assert settings.rate_limits == DEFAULT_RATE_LIMITS
        assert (settings.host, settings.port) == ("127.0.0.1", 8080)

    def test_review_rate_table(self) -> None:
        assert DEFAULT_RATE_LIMITS["ai_expensive"] == "10/hour"
        assert DEFAULT_RATE_LIMITS["ai_generate"] == "100/hour"
        assert DEFAULT_RATE_LIMITS["writes"] == "500/hour"
        assert DEFAULT_RATE_LIMITS["reads"] == "1000/hour"
        assert DEFAULT_RATE_LIMITS["workflow_start"] == "50/hour"


class TestEnvironment:
    def test_lists_from_comma_separated_env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("XYNERGY_CORS_ORIGINS", "https://a.example, https://b.example")
        monkeypatch.setenv("XYNERGY_TRUSTED_PROXIES", "10.0.0.0/8,::1")
        settings = Settings()
        assert settings.cors_origins == ["https://a.example", "https://b.example"]
        assert settings.trusted_proxies == [
            ipaddress.ip_network("10.0.0.0/8"),
            ipaddress.ip_network("::1/128"),
        ]

    def test_service_urls_from_json(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("XYNERGY_SERVICE_URLS", '{"aso-engine": "http://127.0.0.1:9001"}')
        assert Settings().service_urls == {"aso-engine": "http://127.0.0.1:9001"}


class TestRefusals:
    @pytest.mark.parametrize(
        "field", ["cors_origins", "cors_methods", "cors_headers"], ids=lambda f: f
    )
    def test_wildcards_refused(self, field: str) -> None:
        with pytest.raises(ValidationError, match=r"'\*' is refused"):
            Settings(**{field: ["*"]})

    def test_origin_must_be_an_origin(self) -> None:
        with pytest.raises(ValidationError, match="scheme://host"):
            Settings(cors_origins=["https://a.example/path"])

    def test_invalid_rate_limit_string(self) -> None:
        with pytest.raises(ValidationError, match="invalid"):
            Settings(rate_limits={**DEFAULT_RATE_LIMITS, "reads": "lots"})

    def test_production_requires_an_internal_secret(self) -> None:
        with pytest.raises(ValidationError, match="INTERNAL_TOKEN_SECRET"):
            Settings(environment="production")
        with pytest.raises(ValidationError, match="INTERNAL_TOKEN_SECRET"):
            Settings(environment="production", internal_token_secret="short")

    def test_production_requires_https_origins(self) -> None:
        with pytest.raises(ValidationError, match="https"):
            Settings(
                environment="production",
                internal_token_secret="s" * 40,
                cors_origins=["http://app.example"],
            )

    def test_production_with_safe_values(self) -> None:
        settings = Settings(
            environment="production",
            internal_token_secret="s" * 40,
            cors_origins=["https://app.example"],
        )
        assert settings.environment == "production"

    def test_bounds_on_numbers(self) -> None:
        with pytest.raises(ValidationError):
            Settings(max_body_bytes=0)
        with pytest.raises(ValidationError):
            Settings(page_size_max=0)
