"""Reading one secret: from ``NAME`` in the environment or the file named by ``NAME_FILE``.

``NAME_FILE`` is the Docker and Kubernetes convention for mounted secrets. A file
is read no further than a size bound (a wrong path must not load a disk image
into memory), decoded as UTF-8, and its trailing newline dropped (``echo`` and
most editors add one). Values are held in :class:`pydantic.SecretStr`, so a
``repr`` or a log line shows ``**********``; errors name the secret and the file,
never the value.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import SecretStr

__all__ = [
    "FILE_SUFFIX",
    "FileSignature",
    "LoadedSecret",
    "SecretError",
    "file_signature",
    "read_secret",
    "read_secret_file",
    "read_text_file",
    "secret_fields_from_files",
]

FILE_SUFFIX = "_FILE"
FileSignature = tuple[int, int, int]  # (st_mtime_ns, st_size, st_ino)


class SecretError(ValueError):
    """A secret that could not be read; the message names it, never its value."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


@dataclass(frozen=True, slots=True)
class LoadedSecret:
    """One secret as read, with where it came from.

    Attributes:
        name: the variable that names it (``OPENAI_API_KEY``).
        value: the secret itself (``SecretStr``: redacted in ``repr`` and ``str``).
        origin: ``env`` or ``file``.
        path: the file it was read from (origin ``file``).
        signature: the file's (mtime, size, inode) when read, for change polling.
        loaded_at: wall-clock time of the read (seconds since the epoch).
    """

    name: str
    value: SecretStr = field(repr=False)
    origin: Literal["env", "file"]
    path: Path | None = None
    signature: FileSignature | None = None
    loaded_at: float = field(default_factory=time.time)

    @property
    def source(self) -> str:
        """What an operator set: ``NAME`` or ``NAME_FILE``."""
        return self.name + FILE_SUFFIX if self.origin == "file" else self.name

    def same_value(self, other: LoadedSecret | None) -> bool:
        """Whether ``other`` holds the same value (a reload that changed nothing)."""
        return other is not None and other.value.get_secret_value() == self.value.get_secret_value()


def file_signature(path: Path) -> FileSignature | None:
    """What changes when a file is rewritten or its mount swapped; None if it is gone."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


def read_text_file(name: str, path: Path, *, max_bytes: int) -> str:
    """The UTF-8 text of ``path``, read no further than ``max_bytes``.

    Raises:
        SecretError: unreadable, larger than ``max_bytes``, or not UTF-8.
    """
    try:
        with path.open("rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        raise SecretError(
            name, f"cannot read {path} ({exc.strerror or type(exc).__name__})"
        ) from None
    if len(raw) > max_bytes:
        raise SecretError(name, f"{path} is larger than {max_bytes} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretError(name, f"{path} is not UTF-8 text") from None


def read_secret_file(name: str, path: Path, *, max_bytes: int) -> LoadedSecret:
    """The secret in ``path``, read no further than ``max_bytes``.

    Raises:
        SecretError: unreadable, larger than ``max_bytes``, not UTF-8, or empty.
    """
    signature = file_signature(path)
    text = read_text_file(name, path, max_bytes=max_bytes)
    text = text.removesuffix("\n").removesuffix("\r")
    if not text:
        raise SecretError(name, f"{path} is empty")
    return LoadedSecret(name, SecretStr(text), "file", path, signature)


def read_secret(
    name: str, *, max_bytes: int, environ: Mapping[str, str] | None = None
) -> LoadedSecret | None:
    """``name`` from the file named by ``<name>_FILE``, else from ``name``; None if neither.

    Raises:
        SecretError: both are set, or the file cannot be read (see read_secret_file).
    """
    env = os.environ if environ is None else environ
    file_name = env.get(name + FILE_SUFFIX)
    value = env.get(name)
    if file_name and value:
        raise SecretError(name, f"set {name} or {name}{FILE_SUFFIX}, not both")
    if file_name:
        return read_secret_file(name, Path(file_name), max_bytes=max_bytes)
    if value:
        return LoadedSecret(name, SecretStr(value), "env")
    return None


def _is_secret_field(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in get_args(annotation)


def secret_fields_from_files(
    settings_cls: Any, data: Any, *, env_prefix: str, max_bytes: int
) -> Any:
    """Settings input with each unset secret field filled from ``<PREFIX><FIELD>_FILE``.

    For a ``model_validator(mode="before")`` of a ``BaseSettings`` class: every
    ``SecretStr`` field may come from a mounted file as well as from the environment.

    Raises:
        SecretError: the variable and its ``_FILE`` are both set, or the file is unreadable.
    """
    if not isinstance(data, dict):
        return data
    for field_name, info in settings_cls.model_fields.items():
        if not _is_secret_field(info.annotation):
            continue
        if isinstance(data.get(field_name), str):
            # Wrapped in place before anything can fail: a validation error prints
            # this very dict as its input.
            data[field_name] = SecretStr(data[field_name])
        variable = (env_prefix + field_name).upper()
        file_name = os.environ.get(variable + FILE_SUFFIX)
        if not file_name:
            continue
        if data.get(field_name) not in (None, ""):
            raise SecretError(variable, f"set {variable} or {variable}{FILE_SUFFIX}, not both")
        data[field_name] = read_secret_file(variable, Path(file_name), max_bytes=max_bytes).value
    return data
