"""XYNERGY_RUNTIME_EXTRA_OPERATIONS: a deployment's own operations, checked strictly."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from xynergy.platform.config import Settings
from xynergy.system_runtime.app import create_system_runtime_app
from xynergy.system_runtime.catalogue import BUILT_IN_OPERATIONS
from xynergy.system_runtime.config import RuntimeSettings
from xynergy.system_runtime.extra_operations import (
    ExtraOperation,
    ExtraOperationsRefused,
    with_extra_operations,
)

LEDGER_URL = "http://127.0.0.1:9"


def _operation(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "ledger.record",
        "service": "ledger",
        "method": "POST",
        "path": "/effects/{label}",
        "scopes": ["content:write"],
        "description": "Record an entry.",
    } | overrides


class TestTheSetting:
    def test_a_json_list_from_the_environment_is_parsed(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("XYNERGY_RUNTIME_EXTRA_OPERATIONS", json.dumps([_operation()]))
        [operation] = RuntimeSettings().extra_operations
        assert operation.name == "ledger.record"
        assert operation.operation().path_params == ("label",)

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("scopes", ["not:a-scope"]),
            ("scopes", []),
            ("path", "/a/../admin"),
            ("path", "/a/./b"),
            ("path", "relative"),
            ("path", "/a?b=c"),
            ("path", "/a/{Label}"),
            ("path", "/a//b"),
            ("name", "no-dot"),
            ("name", "Upper.case"),
            ("service", "http://x"),
            ("method", "PUT"),
            ("description", ""),
            ("extra", "field"),
        ],
    )
    def test_a_bad_operation_is_refused(self, field: str, value: Any) -> None:
        with pytest.raises(ValidationError):
            ExtraOperation.model_validate(_operation(**{field: value}))


class TestTheCatalogue:
    def test_an_operation_of_a_configured_service_extends_the_catalogue(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        settings = make_settings(service_urls={"ledger": LEDGER_URL})
        extended = with_extra_operations(
            BUILT_IN_OPERATIONS, [ExtraOperation.model_validate(_operation())], settings
        )
        added = extended.get("ledger.record")
        assert added is not None
        assert added.scopes == frozenset({"content:write"})
        assert set(extended.names()) == {*BUILT_IN_OPERATIONS.names(), "ledger.record"}

    def test_a_service_without_a_url_is_refused(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        # A platform service (called in process) keeps its built-in operations only.
        operation = ExtraOperation.model_validate(_operation(service="aso-engine"))
        with pytest.raises(ExtraOperationsRefused, match="no URL in XYNERGY_SERVICE_URLS"):
            with_extra_operations(BUILT_IN_OPERATIONS, [operation], make_settings())

    @pytest.mark.parametrize("name", ["aso.trending", "ledger.record"])
    def test_a_name_already_taken_is_refused(
        self, make_settings: Callable[..., Settings], name: str
    ) -> None:
        settings = make_settings(service_urls={"ledger": LEDGER_URL})
        extra = [
            ExtraOperation.model_validate(_operation()),
            ExtraOperation.model_validate(_operation(name=name)),
        ]
        with pytest.raises(ExtraOperationsRefused, match="already an operation"):
            with_extra_operations(BUILT_IN_OPERATIONS, extra, settings)

    def test_the_app_refuses_to_start_with_a_refused_list(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        runtime = RuntimeSettings(extra_operations=(ExtraOperation.model_validate(_operation()),))
        with pytest.raises(ExtraOperationsRefused):
            create_system_runtime_app(make_settings(), runtime=runtime)
