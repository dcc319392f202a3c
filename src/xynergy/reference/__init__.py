"""Generated references: the README's scopes table, ``docs/settings.md``, ``.env.example``.

Written by ``make reference`` (``tools/gen_reference.py``) from the route table and
the settings models; tests fail when a committed copy drifts from them.
"""

from xynergy.reference.documents import GeneratedFile, generate, stale_files, write
from xynergy.reference.scopes import mounted_apps, render_scopes_table, route_uses
from xynergy.reference.settings import (
    discover_settings,
    render_env_example,
    render_settings_markdown,
    setting_docs,
)

__all__ = [
    "GeneratedFile",
    "discover_settings",
    "generate",
    "mounted_apps",
    "render_env_example",
    "render_scopes_table",
    "render_settings_markdown",
    "route_uses",
    "setting_docs",
    "stale_files",
    "write",
]
