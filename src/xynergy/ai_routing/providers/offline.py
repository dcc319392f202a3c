"""The built-in offline provider: deterministic answers without any network or key.

It is what a fresh install routes to, so every platform feature works end to
end with no AI account. Answers are built from the prompt's own salient words
(useful as keyword ideas or a first draft), identical for identical requests,
and labelled ``provider: "offline"`` wherever they are shown. Offered tools are
used by the rules of :mod:`.offline_tools`; those answers say they are offline
in their text too.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncGenerator

from xynergy.ai_routing.providers.base import (
    Completion,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    UpstreamRequest,
    Usage,
)
from xynergy.ai_routing.providers.offline_tools import (
    OFFLINE_NOTE,
    choose_tool_call,
    summarise_tool_result,
)
from xynergy.ai_routing.providers.tokens import prompt_text
from xynergy.platform.tokens import approximate_tokens

__all__ = ["OfflineProvider"]

_WORD = re.compile(r"[a-z0-9][a-z0-9'-]*")
_STOPWORDS = frozenset(
    "a an and are as at be by for from how i in is it me my of on or our please that the "
    "their this to us we what with write you your give list make create suggest generate "
    "about some into can could would should will keyword keywords idea ideas phrase phrases "
    "suggestion suggestions topic topics draft text prompt short long new good".split()
)
_ANGLES = (
    "best {t}",
    "{t} guide",
    "how to choose {t}",
    "{t} for beginners",
    "{t} tips",
    "affordable {t}",
    "{t} ideas",
    "{t} checklist",
    "top {t} strategies",
    "{t} examples",
    "why {t} matters",
    "{t} near me",
)
_TOPIC_WORDS = 3
_STREAM_WORDS_PER_DELTA = 4


def _topic(request: UpstreamRequest) -> str:
    user_text = next(
        (m.content for m in reversed(request.messages) if m.role == "user"),
        request.messages[-1].content if request.messages else "",
    )
    # "Suggest keywords for: yoga app" -> the subject follows the colon.
    subject = user_text.split(":", 1)[1] if ":" in user_text else user_text
    words: list[str] = []
    for word in _WORD.findall(subject.lower()):
        if word not in _STOPWORDS and word not in words:
            words.append(word)
        if len(words) == _TOPIC_WORDS:
            break
    return " ".join(words) or "your topic"


def _answer(request: UpstreamRequest) -> tuple[str, str]:
    """(text, finish_reason): one idea per line (or a tool result summarised), cut at
    max_tokens words."""
    if request.messages and request.messages[-1].role == "tool":
        lines = summarise_tool_result(request.messages).splitlines()
    else:
        topic = _topic(request)
        seed = hashlib.sha256(repr(request.messages).encode()).digest()[0]
        lines = [_ANGLES[(seed + i) % len(_ANGLES)].format(t=topic) for i in range(len(_ANGLES))]
    words: list[str] = []
    finish_reason = "stop"
    for line in lines:
        line_words = line.split()
        if len(words) + len(line_words) > request.max_tokens:
            finish_reason = "length"
            break
        words.extend(line_words)
        words[-1] += "\n"
    text = " ".join(words).replace("\n ", "\n").strip()
    return text, finish_reason


def _usage(request: UpstreamRequest, text: str, call: ToolCall | None = None) -> Usage:
    output = len(text.split()) + (approximate_tokens(call.name + call.arguments) if call else 0)
    return Usage(
        input_tokens=approximate_tokens(prompt_text(request.messages, request.tools)),
        output_tokens=output,
    )


def _call_text(call: ToolCall) -> str:
    return f"{OFFLINE_NOTE}: calling {call.name}."


class OfflineProvider:
    """Deterministic, local, free."""

    kind = "offline"

    def __init__(self, name: str) -> None:
        self.name = name

    async def complete(self, request: UpstreamRequest) -> Completion:
        call = choose_tool_call(request)
        if call is not None:
            text = _call_text(call)
            return Completion(text, "tool_calls", _usage(request, text, call), (call,))
        text, finish_reason = _answer(request)
        return Completion(text=text, finish_reason=finish_reason, usage=_usage(request, text))

    async def stream(self, request: UpstreamRequest) -> AsyncGenerator[StreamEvent, None]:
        call = choose_tool_call(request)
        if call is not None:
            text = _call_text(call)
            yield TextDelta(text)
            # The arguments in two pieces, as models stream them: clients must join them.
            half = len(call.arguments) // 2
            yield ToolCallDelta(index=0, id=call.id, name=call.name)
            yield ToolCallDelta(index=0, arguments=call.arguments[:half])
            yield ToolCallDelta(index=0, arguments=call.arguments[half:])
            yield StreamEnd(finish_reason="tool_calls", usage=_usage(request, text, call))
            return
        text, finish_reason = _answer(request)
        # Split on spaces but keep them, so the deltas concatenate to the text.
        pieces = re.findall(r"\S+\s*", text)
        for start in range(0, len(pieces), _STREAM_WORDS_PER_DELTA):
            yield TextDelta("".join(pieces[start : start + _STREAM_WORDS_PER_DELTA]))
        yield StreamEnd(finish_reason=finish_reason, usage=_usage(request, text))
