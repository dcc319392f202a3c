"""The built-in catalogue names real routes, with every scope those routes check."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from starlette.routing import Mount

from tests.platform.test_route_walk import required_scopes
from xynergy.platform.app import walk_routes
from xynergy.platform.config import Settings
from xynergy.platform.routing import SecureRoute
from xynergy.server import build_all_in_one
from xynergy.system_runtime.catalogue import (
    BUILT_IN_OPERATIONS,
    Operation,
    OperationInputError,
)

NAMED_IN_THE_ISSUE = {
    "aso.import_keywords",
    "aso.trending",
    "marketing.research",
    "marketing.generate_campaign",
    "marketing.approve_campaign",
    "marketing.activate_campaign",
    "ai.generate",
    "intake.stats",
}


def _routes(make_settings: Callable[..., Settings]) -> dict[str, list[SecureRoute]]:
    root = build_all_in_one(make_settings())
    routes: dict[str, list[SecureRoute]] = {}
    for mount in root.routes:
        assert isinstance(mount, Mount)
        assert isinstance(mount.app, FastAPI)
        slug = mount.path.strip("/")
        routes[slug] = [r for r in walk_routes(mount.app.routes) if isinstance(r, SecureRoute)]
    return routes


def test_every_operation_is_a_route_and_holds_its_scopes(
    make_settings: Callable[..., Settings],
) -> None:
    routes = _routes(make_settings)
    for operation in BUILT_IN_OPERATIONS:
        matches = [
            route
            for route in routes.get(operation.service, [])
            if route.path == operation.path and operation.method in (route.methods or ())
        ]
        assert matches, f"{operation.name}: no route {operation.method} {operation.path}"
        missing = required_scopes(matches[0]) - operation.scopes
        assert not missing, f"{operation.name} lacks {sorted(missing)}"


def test_the_issues_operations_are_there() -> None:
    assert NAMED_IN_THE_ISSUE <= set(BUILT_IN_OPERATIONS.names())


class TestRequestParts:
    def test_an_ndjson_operation_sends_rows_as_json_lines_and_the_rest_as_query(self) -> None:
        operation = BUILT_IN_OPERATIONS.get("aso.import_keywords")
        assert operation is not None
        call = operation.request_parts(
            {"rows": [{"phrase": "a b", "locale": "en-US"}, {"phrase": "c"}], "mode": "best_effort"}
        )
        assert call.json is None
        assert call.params == {"mode": "best_effort"}
        assert call.content_type == "application/x-ndjson"
        assert call.content == b'{"phrase":"a b","locale":"en-US"}\n{"phrase":"c"}\n'

    @pytest.mark.parametrize("rows", [None, [], "a\nb", [["a"]], [{"phrase": "a"}, 3]])
    def test_ndjson_rows_must_be_objects(self, rows: object) -> None:
        operation = BUILT_IN_OPERATIONS.get("aso.import_keywords")
        assert operation is not None
        with pytest.raises(OperationInputError, match="rows"):
            operation.request_parts({"rows": rows})

    def test_a_required_query_parameter_is_required(self) -> None:
        operation = BUILT_IN_OPERATIONS.get("aso.trending")
        assert operation is not None
        assert operation.required_inputs == ("window",)
        with pytest.raises(OperationInputError, match="window"):
            operation.request_parts({"direction": "improved"})
        assert operation.request_parts({"window": 7}).params == {"window": "7"}

    def test_a_path_parameter_cannot_change_the_path(self) -> None:
        operation = Operation("x.y", "svc", "POST", "/things/{thing_id}", frozenset(), "")
        with pytest.raises(OperationInputError):
            operation.request_parts({"thing_id": "../admin"})
        call = operation.request_parts({"thing_id": "abc", "note": "n"})
        assert (call.path, call.json, call.params) == ("/things/abc", {"note": "n"}, None)

    def test_an_input_that_is_not_an_object_is_refused(self) -> None:
        operation = BUILT_IN_OPERATIONS.get("ai.generate")
        assert operation is not None
        with pytest.raises(OperationInputError, match="object"):
            operation.request_parts(["prompt"])  # type: ignore[arg-type]
