"""Every input is bounded, and every free-text field follows the one text rule.

The walk covers every route of every service app and the admin app (as mounted
by ``build_all_in_one``): request bodies, bodies an endpoint reads itself, and
query and path parameters. It reads the *core schemas* pydantic validates with,
so what it checks is what is enforced, nested models and ``$ref``s included:

* every string has a maximum length, every list/set/tuple a maximum size, every
  dict a maximum number of entries, and nothing is ``Any``;
* in bodies, every string is a platform text type (``PlainText``, ``RichText``,
  ``RawText`` from :mod:`xynergy.platform.text`) or is constrained by an anchored
  pattern, a ``Literal`` or an enum. (Query and path text is refused by the
  platform when it holds NUL or non-UTF-8 bytes; see ``input_text``.)

Exceptions are listed below with their reason; a new one is a reviewed decision.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from pydantic import BaseModel, Field, TypeAdapter
from pydantic_core import CoreSchema
from starlette.routing import Mount

from xynergy.intelligence_gateway.submissions.public_schemas import (
    BetaApplicationCreate,
    ContactMessageCreate,
)
from xynergy.platform.app import walk_routes
from xynergy.platform.config import Settings
from xynergy.platform.routing import SecureRoute
from xynergy.platform.text import TEXT_KIND_KEY, PlainText
from xynergy.server import build_all_in_one

# Routes that read their body themselves (no body parameter FastAPI could see):
# the schema they validate it with, or None with the reason there is none.
SELF_READ_BODIES: dict[tuple[str, str], type[BaseModel] | None] = {
    ("POST", "/intelligence-gateway/api/beta-applications"): BetaApplicationCreate,
    ("POST", "/intelligence-gateway/api/contact"): ContactMessageCreate,
    # CSV, streamed and bounded row by row by the importer (rows, bytes, fields).
    ("POST", "/aso-engine/api/keywords/bulk-import"): None,
}
# Models allowed to accept unknown fields, and why.
OPEN_MODELS = {
    # OpenAI clients send parameters the gateway does not use; they are ignored,
    # never stored, bounded by the body-size limit, and a lone surrogate anywhere
    # in a JSON body is refused by the platform.
    "ChatCompletionRequest",
}
_SIZED = frozenset({"list", "set", "frozenset", "generator"})
_SCALARS = frozenset(
    {
        "bool",
        "int",
        "float",
        "decimal",
        "date",
        "datetime",
        "time",
        "timedelta",
        "none",
        "literal",
        "enum",
        "uuid",
        "is-instance",
    }
)
_WRAPPERS = frozenset(
    {"nullable", "default", "model-field", "dataclass-field", "typed-dict-field", "with-info"}
)
_FUNCTIONS = frozenset({"function-after", "function-before", "function-wrap"})
_ANCHOR_ENDS = ("$", r"\Z", r"\z")


@dataclass
class SchemaWalk:
    """Findings of one walk over a core schema."""

    free_text_rule: bool
    findings: list[str] = field(default_factory=list)
    definitions: dict[str, CoreSchema] = field(default_factory=dict)
    _visiting: set[str] = field(default_factory=set)

    def check(self, schema: Mapping[str, Any], where: str, *, text_kind: str | None) -> None:
        kind = schema["type"]
        if kind == "definitions":
            for definition in schema["definitions"]:
                self.definitions[definition["ref"]] = definition
            self.check(schema["schema"], where, text_kind=text_kind)
        elif kind == "definition-ref":
            self._follow(schema["schema_ref"], where, text_kind)
        elif "ref" in schema and schema["ref"] not in self._visiting:
            # An inline definition that may be referenced again further down.
            self.definitions[schema["ref"]] = schema  # type: ignore[assignment]
            self._follow(schema["ref"], where, text_kind)
        else:
            self._check_node(kind, schema, where, text_kind)

    def _follow(self, ref: str, where: str, text_kind: str | None) -> None:
        if ref in self._visiting:
            return
        self._visiting.add(ref)
        try:
            target = dict(self.definitions[ref])
            target.pop("ref", None)
            self.check(target, where, text_kind=text_kind)
        finally:
            self._visiting.discard(ref)

    def _check_node(
        self, kind: str, schema: Mapping[str, Any], where: str, text_kind: str | None
    ) -> None:
        if kind == "str":
            self._check_string(schema, where, text_kind)
        elif kind in _FUNCTIONS:
            marked = (schema.get("metadata") or {}).get(TEXT_KIND_KEY)
            self.check(schema["schema"], where, text_kind=marked or text_kind)
        elif kind in _WRAPPERS:
            self.check(schema["schema"], where, text_kind=text_kind)
        elif kind in _SIZED:
            self._bounded(schema, where, "a list")
            self._items(schema.get("items_schema"), where + "[]", text_kind)
        elif kind == "tuple":
            variadic = schema.get("variadic_item_index")
            if variadic is not None:
                self._bounded(schema, where, "a tuple")
            for index, item in enumerate(schema.get("items_schema", [])):
                self.check(item, f"{where}[{index}]", text_kind=text_kind)
        elif kind == "dict":
            self._bounded(schema, where, "a dict")
            self._items(schema.get("keys_schema"), where + "{key}", text_kind)
            self._items(schema.get("values_schema"), where + "{}", text_kind)
        elif kind == "model":
            self._check_model(schema, where)
        elif kind == "model-fields":
            for name, item in schema["fields"].items():
                self.check(item, f"{where}.{name}", text_kind=None)
            if schema.get("extras_schema") is not None:
                self.check(schema["extras_schema"], where + ".<extra>", text_kind=None)
        elif kind == "union":
            for choice in schema["choices"]:
                choice_schema = choice[0] if isinstance(choice, tuple) else choice
                self.check(choice_schema, where, text_kind=text_kind)
        elif kind == "tagged-union":
            for choice in schema["choices"].values():
                self.check(choice, where, text_kind=text_kind)
        elif kind in {"json-or-python", "lax-or-strict"}:
            for key in ("json_schema", "python_schema", "lax_schema", "strict_schema"):
                if key in schema:
                    self.check(schema[key], where, text_kind=text_kind)
        elif kind == "chain":
            for step in schema["steps"]:
                self.check(step, where, text_kind=text_kind)
        elif kind == "any":
            self.findings.append(f"{where}: Any is unbounded")
        elif kind not in _SCALARS:
            self.findings.append(f"{where}: the walk does not know schema type {kind!r}")

    def _items(self, schema: Mapping[str, Any] | None, where: str, text_kind: str | None) -> None:
        if schema is None:
            self.findings.append(f"{where}: items of any type are unbounded")
        else:
            self.check(schema, where, text_kind=text_kind)

    def _bounded(self, schema: Mapping[str, Any], where: str, what: str) -> None:
        if schema.get("max_length") is None:
            self.findings.append(f"{where}: {what} without a maximum size")

    def _check_string(self, schema: Mapping[str, Any], where: str, text_kind: str | None) -> None:
        if schema.get("max_length") is None:
            self.findings.append(f"{where}: a string without a maximum length")
        if not self.free_text_rule or text_kind is not None:
            return
        pattern = schema.get("pattern") or ""
        if not (pattern.startswith("^") and pattern.endswith(_ANCHOR_ENDS)):
            self.findings.append(
                f"{where}: free text without a platform text type (PlainText, RichText, "
                "RawText) or an anchored pattern"
            )

    def _check_model(self, schema: Mapping[str, Any], where: str) -> None:
        model = schema["cls"]
        config = schema.get("config") or {}
        extra = config.get("extra_fields_behavior") or schema.get("schema", {}).get(
            "extra_behavior"
        )
        if extra == "allow" and model.__name__ not in OPEN_MODELS:
            self.findings.append(f"{where}: {model.__name__} accepts unknown fields")
        self.check(schema["schema"], where, text_kind=None)


def core_schema_of(annotation: Any) -> CoreSchema:
    return TypeAdapter(annotation).core_schema


def walk(annotation: Any, where: str, *, free_text_rule: bool) -> list[str]:
    """The findings for one body or parameter type."""
    walker = SchemaWalk(free_text_rule=free_text_rule)
    walker.check(core_schema_of(annotation), where, text_kind=None)
    return walker.findings


@dataclass(frozen=True)
class Input:
    """One thing a client sends: a body or a parameter, with its type."""

    where: str
    annotation: Any
    is_body: bool


def _parameters(dependant: Dependant) -> Iterator[tuple[str, Any]]:
    for location, params in (("query", dependant.query_params), ("path", dependant.path_params)):
        for param in params:
            yield (
                f"{location}.{param.alias}",
                Annotated[param.field_info.annotation, param.field_info],
            )
    for sub in dependant.dependencies:
        yield from _parameters(sub)


def route_inputs(app: FastAPI, mount: str) -> Iterator[Input]:
    """Every body and parameter of every SecureRoute of ``app`` mounted at ``mount``."""
    for route in walk_routes(app.routes):
        if not isinstance(route, SecureRoute):
            continue
        for method in sorted(route.methods):
            label = f"{method} {mount}{route.path}"
            body = route.body_field
            if body is not None:
                annotation = Annotated[body.field_info.annotation, body.field_info]
                yield Input(label + " body", annotation, is_body=True)
            elif "requestBody" in (route.openapi_extra or {}) or (method, mount + route.path) in (
                SELF_READ_BODIES
            ):
                key = (method, mount + route.path)
                if key not in SELF_READ_BODIES:
                    raise AssertionError(f"{label} reads a body the walk cannot see; list it")
                schema = SELF_READ_BODIES[key]
                if schema is not None:
                    yield Input(label + " body", schema, is_body=True)
            for name, annotation in _parameters(route.dependant):
                yield Input(f"{label} {name}", annotation, is_body=False)


def every_input(settings: Settings) -> list[Input]:
    root = build_all_in_one(settings)
    found: list[Input] = []
    for mount in root.routes:
        assert isinstance(mount, Mount)
        assert isinstance(mount.app, FastAPI)
        found.extend(route_inputs(mount.app, mount.path))
    return found


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[Input]:
    data_dir = tmp_path_factory.mktemp("schemas")
    settings = Settings(
        environment="test",
        data_dir=data_dir,
        database_url=f"sqlite+aiosqlite:///{data_dir}/x.db",
        internal_token_secret="walk-" + "x" * 32,
    )
    return every_input(settings)


class TestEveryRequestSchema:
    def test_the_walk_sees_every_service_and_the_admin_app(self, inputs: list[Input]) -> None:
        mounts = {item.where.split(" ")[1].split("/")[1] for item in inputs}
        assert {
            "aso-engine",
            "ai-routing-engine",
            "intelligence-gateway",
            "marketing-engine",
            "admin",
        } <= mounts
        assert sum(item.is_body for item in inputs) >= 15

    def test_every_body_is_bounded_and_its_free_text_is_typed(self, inputs: list[Input]) -> None:
        findings = [
            finding
            for item in inputs
            if item.is_body
            for finding in walk(item.annotation, item.where, free_text_rule=True)
        ]
        assert findings == []

    def test_every_query_and_path_parameter_is_bounded(self, inputs: list[Input]) -> None:
        findings = [
            finding
            for item in inputs
            if not item.is_body
            for finding in walk(item.annotation, item.where, free_text_rule=False)
        ]
        assert findings == []


# --- the walk itself: it must see what a careless schema would let in -----------


class _Nested(BaseModel):
    note: str


class _Careless(BaseModel):
    title: str = Field(max_length=10)
    tags: list[Annotated[str, PlainText(max_length=10)]]
    meta: dict[str, int] = Field(max_length=5)
    nested: list[_Nested] = Field(max_length=2)
    anything: Any = None
    code: Annotated[str, Field(max_length=5, pattern=r"^[a-z]")]


class _Careful(BaseModel):
    title: Annotated[str, PlainText(max_length=10)]
    kind: Literal["a", "b"]
    code: Annotated[str, Field(max_length=5, pattern=r"^[a-z]+$")]
    meta: dict[Annotated[str, Field(max_length=5, pattern=r"^[a-z]+$")], int] = Field(max_length=5)


class TestTheWalk:
    @pytest.mark.parametrize(
        ("expected", "check"),
        [
            ("body.title: free text without", str.startswith),
            ("body.tags: a list without a maximum size", str.__eq__),
            ("body.meta{key}: a string without a maximum length", str.__eq__),
            ("body.nested[].note: a string without a maximum length", str.__eq__),
            ("body.anything: Any is unbounded", str.__eq__),
            ("body.code: free text without", str.startswith),
        ],
    )
    def test_a_careless_field_is_found(
        self, expected: str, check: Callable[[str, str], bool]
    ) -> None:
        findings = walk(_Careless, "body", free_text_rule=True)
        assert any(check(finding, expected) for finding in findings), findings

    def test_a_careful_model_passes(self) -> None:
        assert walk(_Careful, "body", free_text_rule=True) == []
