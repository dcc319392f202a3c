"""Secrets from the environment or mounted files, reloaded while the platform serves.

``source`` reads one secret (``NAME`` or ``NAME_FILE``); ``registry`` holds the
parts services register and reloads them validate-then-swap; ``watch`` reloads
on SIGHUP and when a secret file changes.
"""

from xynergy.platform.secrets.registry import (
    ReloadablePart,
    ReloadFailure,
    ReloadReport,
    SecretReader,
    SecretsRegistry,
    Swap,
    Trigger,
)
from xynergy.platform.secrets.source import (
    FILE_SUFFIX,
    LoadedSecret,
    SecretError,
    read_secret,
    secret_fields_from_files,
)
from xynergy.platform.secrets.watch import SecretsWatcher

__all__ = [
    "FILE_SUFFIX",
    "LoadedSecret",
    "ReloadFailure",
    "ReloadReport",
    "ReloadablePart",
    "SecretError",
    "SecretReader",
    "SecretsRegistry",
    "SecretsWatcher",
    "Swap",
    "Trigger",
    "read_secret",
    "secret_fields_from_files",
]
