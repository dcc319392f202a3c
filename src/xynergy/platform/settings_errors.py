"""A bad setting as one line that names its environment variable.

pydantic's ``ValidationError`` names the field (``port``) and the model
(``Settings``); the operator set ``XYNERGY_PORT``. A settings source that cannot
even decode a value (a JSON field holding something else) raises
``SettingsError``, which names only the field: the variable of every loaded
settings model with a field of that name is given. Values are never repeated:
some settings hold secrets or credentials.
"""

from __future__ import annotations

import json
import re

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsError

__all__ = ["describe_settings_error"]

_MAX_REPORTED_SETTINGS = 5
_FIELD_IN_MESSAGE = re.compile(r'field "(\w+)"')
_VALUE_ERROR_PREFIX = "Value error, "


def _settings_models() -> list[type[BaseSettings]]:
    """Every settings model defined so far (platform and the services imported)."""
    found: list[type[BaseSettings]] = []
    pending: list[type[BaseSettings]] = [BaseSettings]
    while pending:
        for model in pending.pop().__subclasses__():
            found.append(model)
            pending.append(model)
    return found


def _variable(model: type[BaseSettings], field: str) -> str:
    return f"{model.model_config.get('env_prefix', '')}{field}".upper()


def _describe_undecodable(exc: SettingsError) -> str | None:
    match = _FIELD_IN_MESSAGE.search(str(exc))
    if match is None:
        return None
    field = match.group(1)
    names = [_variable(m, field) for m in _settings_models() if field in m.model_fields]
    cause = exc.__cause__
    reason = "is not valid JSON" if isinstance(cause, json.JSONDecodeError) else "cannot be read"
    return f"{' or '.join(sorted(set(names))) or field}: {reason}"


def _describe_invalid(exc: ValidationError) -> str | None:
    models = [m for m in _settings_models() if m.__name__ == exc.title]
    if not models:
        return None
    parts = []
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    for error in errors[:_MAX_REPORTED_SETTINGS]:
        message = " ".join(str(error["msg"]).removeprefix(_VALUE_ERROR_PREFIX).split())
        location = error["loc"]
        # An error without a location comes from a check across settings, whose
        # message names the variables itself.
        parts.append(
            f"{_variable(models[0], str(location[0]))}: {message}" if location else message
        )
    if len(errors) > _MAX_REPORTED_SETTINGS:
        parts.append(f"(and {len(errors) - _MAX_REPORTED_SETTINGS} more)")
    return "; ".join(parts)


def describe_settings_error(exc: BaseException) -> str | None:
    """``XYNERGY_PORT: Input should be a valid integer...`` for a settings error.

    Args:
        exc: any exception.

    Returns:
        One line naming each bad variable and what is wrong with it, or None when
        ``exc`` does not come from reading settings.
    """
    if isinstance(exc, SettingsError):
        return _describe_undecodable(exc)
    if isinstance(exc, ValidationError):
        return _describe_invalid(exc)
    return None
