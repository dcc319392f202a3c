"""The settings reference: every ``XYNERGY_*`` variable, read from the settings models.

The models are found, not listed: every ``BaseSettings`` subclass defined in the
``xynergy`` package, so a new service's settings appear without touching this file.
"""

from __future__ import annotations

import importlib
import inspect
import ipaddress
import json
import shlex
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

__all__ = [
    "SettingDoc",
    "discover_settings",
    "render_env_example",
    "render_settings_markdown",
    "setting_docs",
]

# Importing these runs code meant for another entry point (Alembic's env.py).
_NOT_IMPORTED = ("migrations",)
# The platform's own model comes first; services follow by module name.
_PLATFORM_MODULE = "xynergy.platform.config"
_GENERATOR = "make reference"
# Shell-safe characters: a value made only of these needs no quotes in .env.
_BARE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.,:/+@%=")


@dataclass(frozen=True)
class SettingDoc:
    """One variable as the references show it."""

    env_name: str
    type_name: str
    default: str  # as the environment spells it; "" when unset, secret or computed
    is_set_by_default: bool
    is_computed: bool  # by a function at start (machine-dependent): the description says how
    is_secret: bool
    bounds: str
    description: str


def discover_settings(package: str = "xynergy") -> list[type[BaseSettings]]:
    """Every ``BaseSettings`` subclass defined in ``package``: the platform's, then by module."""
    root = importlib.import_module(package)
    found: dict[str, type[BaseSettings]] = {}
    for module_name in _module_names(package, Path(inspect.getfile(root)).parent):
        module = importlib.import_module(module_name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseSettings) and cls.__module__ == module_name:
                found[f"{module_name}.{cls.__qualname__}"] = cls
    return [found[name] for name in sorted(found, key=_platform_first)]


def _platform_first(qualified_name: str) -> tuple[bool, str]:
    return not qualified_name.startswith(_PLATFORM_MODULE + "."), qualified_name


def _module_names(package: str, directory: Path) -> Iterator[str]:
    for path in sorted(directory.rglob("*.py")):
        parts = path.relative_to(directory).with_suffix("").parts
        if parts[0] in _NOT_IMPORTED:
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join((package, *parts))


def env_prefix(model: type[BaseSettings]) -> str:
    """The model's environment prefix (``XYNERGY_ASO_``)."""
    return str(model.model_config.get("env_prefix", ""))


def setting_docs(model: type[BaseSettings]) -> list[SettingDoc]:
    """The model's variables, in declaration order."""
    return [_doc(model, name, field) for name, field in model.model_fields.items()]


def _doc(model: type[BaseSettings], name: str, field: FieldInfo) -> SettingDoc:
    is_computed = _is_computed(field)
    default = None if is_computed else field.get_default(call_default_factory=True)
    is_secret = _is_secret(field.annotation)
    alias = field.validation_alias if isinstance(field.validation_alias, str) else None
    return SettingDoc(
        env_name=(alias or env_prefix(model) + name).upper(),
        type_name=_type_name(field.annotation),
        default="" if is_secret else _env_value(default),
        is_set_by_default=default is not None and not is_secret,
        is_computed=is_computed,
        is_secret=is_secret,
        bounds=_bounds(field.metadata),
        description=" ".join((field.description or "").split()),
    )


def _is_computed(field: FieldInfo) -> bool:
    """Whether the default comes from a named function (``default_data_dir``).

    Such a default depends on the machine (a home directory), so the references
    say "computed at start" and leave the how to the field's description instead
    of printing the generating machine's value. Lambdas and types
    (``list``, ``lambda: dict(DEFAULTS)``) only copy a constant: their value is shown.
    """
    factory = field.default_factory
    return inspect.isfunction(factory) and factory.__name__ != "<lambda>"


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in get_args(annotation)


def _type_name(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " | ".join(json.dumps(arg) for arg in args)
    if origin in (Union, types.UnionType):
        if set(args) == {ipaddress.IPv4Network, ipaddress.IPv6Network}:
            return "IP network"
        return " | ".join(_type_name(arg) for arg in args)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return f"list[{_type_name(args[0])}]"
    if origin is not None:
        return f"{origin.__name__}[{', '.join(_type_name(arg) for arg in args)}]"
    if annotation is type(None):
        return "None"
    if annotation is SecretStr:
        return "secret"
    if annotation is Path:
        return "path"
    return str(getattr(annotation, "__name__", annotation))


def _env_value(value: Any) -> str:
    """``value`` as the environment would spell it; JSON for lists and objects."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float | Path):
        return str(value)
    if isinstance(value, tuple | list | dict | set | frozenset):
        plain = sorted(value) if isinstance(value, set | frozenset) else value
        return json.dumps(plain, default=str, separators=(",", ":"))
    return str(value)


_BOUND_SYMBOLS: tuple[tuple[type[Any], str, str], ...] = (
    (annotated_types.Ge, "ge", ">="),
    (annotated_types.Gt, "gt", ">"),
    (annotated_types.Le, "le", "<="),
    (annotated_types.Lt, "lt", "<"),
    (annotated_types.MinLen, "min_length", "length >="),
    (annotated_types.MaxLen, "max_length", "length <="),
)


def _bounds(metadata: Iterable[Any]) -> str:
    parts = []
    for constraint in metadata:
        for kind, attribute, symbol in _BOUND_SYMBOLS:
            if isinstance(constraint, kind):
                parts.append(f"{symbol} {getattr(constraint, attribute)}")
    return ", ".join(parts)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _markdown_default(doc: SettingDoc) -> str:
    if doc.is_computed:
        return "computed at start (see description)"
    if doc.is_secret:
        return "unset (secret)"
    if not doc.is_set_by_default:
        return "unset"
    return f"`{_cell(doc.default)}`" if doc.default else '`""`'


def render_settings_markdown(models: Iterable[type[BaseSettings]]) -> str:
    """``docs/settings.md``: one table per settings model."""
    lines = [
        "# Settings reference",
        "",
        f"<!-- Generated by `{_GENERATOR}` from the settings models; do not edit by hand. -->",
        "",
        "Every setting is an environment variable; none is needed for the embedded",
        'defaults. List and object values are JSON (`["a","b"]`, `{"k": 1}`); where a',
        "list also takes comma-separated values, its description says so. `.env.example`",
        "lists the same variables with their defaults, commented out.",
    ]
    for model in models:
        doc = inspect.getdoc(model) or ""
        lines += [
            "",
            f"## `{env_prefix(model)}*`: {model.__name__}",
            "",
            f"{doc.splitlines()[0] if doc else ''} (`{model.__module__}.{model.__qualname__}`)",
            "",
            "| variable | type | default | bounds | description |",
            "|---|---|---|---|---|",
        ]
        for setting in setting_docs(model):
            lines.append(
                f"| `{setting.env_name}` | {_cell(setting.type_name)} | "
                f"{_markdown_default(setting)} | {_cell(setting.bounds)} | "
                f"{_cell(setting.description)} |"
            )
    return "\n".join(lines) + "\n"


def _shell_value(value: str) -> str:
    return value if set(value) <= _BARE else shlex.quote(value)


def render_env_example(models: Iterable[type[BaseSettings]]) -> str:
    """``.env.example``: every variable commented out, with its default and description."""
    lines = [
        f"# Generated by `{_GENERATOR}` from the settings models; do not edit by hand.",
        "# Every Xynergy setting with its default, commented out: uncomment what you change.",
        "# The platform reads the process environment; load this file into it, e.g.",
        "#   set -a; . ./.env; set +a",
        "# Reference: docs/settings.md",
    ]
    for model in models:
        lines += ["", f"# --- {env_prefix(model)}*: {model.__name__} ({model.__module__})"]
        for setting in setting_docs(model):
            details = ", ".join(
                part for part in (setting.type_name, setting.bounds, _unset_note(setting)) if part
            )
            lines.append(f"# {setting.description} ({details})")
            lines.append(f"# {setting.env_name}={_shell_value(setting.default)}")
    return "\n".join(lines) + "\n"


def _unset_note(setting: SettingDoc) -> str:
    if setting.is_computed:
        return "computed at start by default"
    if setting.is_secret:
        return "secret, unset by default"
    return "" if setting.is_set_by_default else "unset by default"
