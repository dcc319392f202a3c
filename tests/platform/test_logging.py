"""Log lines: valid JSON whatever the input, secrets redacted, request id attached."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from xynergy.intelligence_gateway.forms.service import new_webhook_secret
from xynergy.platform.auth.keys import generate_key
from xynergy.platform.logging import (
    AccessLog,
    configure_logging,
    configure_safe_defaults,
    get_logger,
)
from xynergy.platform.tracing import reset_request_id, set_request_id


class TestAccessLog:
    def test_lines_are_json_even_for_hostile_values(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        access = AccessLog()
        access.write('svc"\n', "GET", "/items/{item_id}", 200, 0.00123, "rid-1")
        access.write("svc", 'PO"ST\\', '/x"}{', 500, 1.5, "rid-2")
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [line["service"] for line in lines] == ['svc"\n', "svc"]
        assert lines[1]["method"] == 'PO"ST\\'
        assert lines[1]["route"] == '/x"}{'
        assert lines[0]["duration_ms"] == 1.23
        assert [line["request_id"] for line in lines] == ["rid-1", "rid-2"]
        assert all(line["timestamp"].endswith("Z") for line in lines)


class TestStructuredLogs:
    @pytest.fixture(autouse=True)
    def _restore_logging(self) -> object:
        yield None
        structlog.reset_defaults()
        configure_safe_defaults()
        logging.getLogger().handlers.clear()

    @staticmethod
    def _log_into_capsys() -> None:
        # Called in the test body: only there is sys.stdout the stream capsys reads.
        # Uncached, so no logger keeps that stream after the test.
        configure_logging("INFO")
        structlog.configure(cache_logger_on_first_use=False)

    def test_a_key_in_a_message_or_field_is_redacted(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        self._log_into_capsys()
        secret = generate_key().plaintext
        token = set_request_id("req-42")
        try:
            get_logger("test").warning(f"bad key {secret}", api_key=secret, note=f"k={secret}")
        finally:
            reset_request_id(token)
        output = capsys.readouterr().out
        assert secret not in output
        line = json.loads(output.strip().splitlines()[-1])
        assert line["request_id"] == "req-42"
        assert line["api_key"] == "[REDACTED]"
        assert "xyn_[REDACTED]" in line["event"]
        assert "xyn_[REDACTED]" in line["note"]

    def test_a_webhook_signing_secret_in_a_message_is_redacted(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        self._log_into_capsys()
        secret = new_webhook_secret()
        get_logger("test").warning(f"delivery failed with {secret}", note=f"s={secret}")
        output = capsys.readouterr().out
        assert secret not in output
        line = json.loads(output.strip().splitlines()[-1])
        assert "whsec_[REDACTED]" in line["event"]
        assert "whsec_[REDACTED]" in line["note"]


class TestUnconfiguredLogging:
    """Before ``configure_logging`` (tests, an app run by another server)."""

    @pytest.fixture(autouse=True)
    def _safe_defaults(self) -> object:
        structlog.reset_defaults()
        configure_safe_defaults()
        yield None
        structlog.reset_defaults()
        configure_safe_defaults()

    def test_an_exception_is_logged_without_local_variables_or_keys(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        key = generate_key().plaintext

        def fail(presented: str) -> None:
            raise ValueError("refused " + presented)

        try:
            fail(key)
        except ValueError:
            get_logger("test").exception("request.failed")
        out = capsys.readouterr().out
        assert "request.failed" in out
        assert "Traceback" in out
        assert key not in out
        assert "locals" not in out
