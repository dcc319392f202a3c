"""The text types both AI request schemas (OpenAI-compatible and intelligent) share."""

from __future__ import annotations

from typing import Annotated

from xynergy.platform.text import RawText

__all__ = ["MAX_PROMPT_CHARS", "ModelName", "Prompt"]

# Parsing caps; the configured (smaller) bounds are applied after parsing.
MAX_PROMPT_CHARS = 10_000_000
_MAX_MODEL_CHARS = 100

# Prompt text goes to a model, never into a page or a column: kept as sent. NUL is
# harmless there (JSON-escaped upstream); a lone surrogate cannot be encoded for
# the provider or the cache key, so the type refuses it.
Prompt = Annotated[str, RawText(max_length=MAX_PROMPT_CHARS, allow_nul=True)]
ModelName = Annotated[str, RawText(max_length=_MAX_MODEL_CHARS, min_length=1)]
