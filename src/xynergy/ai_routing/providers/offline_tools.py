"""How the offline provider uses tools: simple, deterministic rules, no model.

* Which tool: the one whose name and description share the most words with the
  last user message (name words count double; ties go to the earlier tool). With
  ``tool_choice: "auto"`` a tool sharing no word is not called; ``"required"``
  calls the best one anyway, a named choice calls that one, ``"none"`` never calls.
* With which arguments: the schema's required properties, each filled from the
  message where a rule can (an enum value the message names, a number next to
  the property's name, ``name: value``) and otherwise from the schema's
  ``default``, then from weaker hints in the message (its only number, a quoted
  phrase, its subject), then the schema's ``minimum``, first enum value or a
  typed empty value.
* A list of strings (``keywords``, ``phrases``) after tool results this turn takes
  the phrases those results listed (their ``phrase`` / ``keyword`` fields, in
  order): "the top three" takes three, otherwise up to the schema's ``maxItems``.
  So "which keywords are trending? draft a campaign for the top three" drafts
  with the three trending phrases, not with words of the question.
* After a tool result (the last message is a ``tool`` message) it calls a tool not
  yet called since the last user message whose name that message names, if any;
  otherwise it answers in text, summarising the results, unless the choice forces
  another call.

Identical requests give identical calls: the call id is a hash of the conversation.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from xynergy.ai_routing.providers.base import ChatMessage, ToolCall, ToolSpec, UpstreamRequest

__all__ = ["OFFLINE_NOTE", "choose_tool_call", "summarise_tool_result"]

OFFLINE_NOTE = "Offline answer (no AI model was used)"
_WORD = re.compile(r"[a-z0-9]+")
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_NUMBER = r"(-?\d+(?:\.\d+)?)"
_QUOTED = re.compile(r"[\"“]([^\"”]{1,200})[\"”]")
_IGNORED = frozenset(
    "a about an and are as at be by for from how i in is it me my of on or our please that the "
    "their this to us we what which with you your can could would should will do does get "
    "show tell find all any some".split()
)
_SUBJECT_WORDS = 6
_MAX_DEPTH = 8
_RESULT_CHARS = 400
_RESULT_ITEMS = 8
# Fields of a tool result's items that name a phrase another tool can take.
_PHRASE_FIELDS = ("phrase", "keyword")
# Phrases gathered from one turn's tool results; more are never needed.
_PHRASES_MAX = 50
_COUNTS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
           "eight": 8, "nine": 9, "ten": 10}  # fmt: skip
_TOP_N = re.compile(r"\b(?:top|first|best)\s+(\d{1,3}|" + "|".join(_COUNTS) + r")\b", re.I)


def _words(text: str) -> set[str]:
    """Lower-case words without filler, a plural ``s`` dropped (``keywords`` ~ ``keyword``)."""
    spaced = _CAMEL.sub(r"\1 \2", text).lower()
    return {
        word[:-1] if len(word) > 3 and word.endswith("s") else word
        for word in _WORD.findall(spaced)
        if word not in _IGNORED
    }


def _last_user_text(messages: tuple[ChatMessage, ...]) -> str:
    return next((m.content for m in reversed(messages) if m.role == "user"), "")


def _subject(text: str) -> str:
    """The message's salient words, in order: what a free-text argument gets."""
    subject = text.split(":", 1)[1] if ":" in text else text
    words: list[str] = []
    for word in _WORD.findall(subject.lower()):
        if word not in _IGNORED and word not in words:
            words.append(word)
        if len(words) == _SUBJECT_WORDS:
            break
    return " ".join(words)


def _score(tool: ToolSpec, wanted: set[str]) -> int:
    return 2 * len(_words(tool.name) & wanted) + len(_words(tool.description) & wanted)


def _pick(request: UpstreamRequest, text: str) -> ToolSpec | None:
    tools = request.tools
    if tools is None or not tools.specs or tools.mode == "none":
        return None
    if tools.mode == "named":
        return tools.spec(tools.name or "")
    wanted = _words(text)
    if tools.mode == "auto" and request.messages[-1].role == "tool":
        # A request naming several things ("trending keywords, then a campaign") gets
        # them one call at a time: a tool not yet called since the user spoke whose
        # name the message names; otherwise the result is answered.
        return _next_named(request.messages, tools.specs, wanted)
    best_score, best = max(((_score(tool, wanted), -i), tool) for i, tool in enumerate(tools.specs))
    if best_score[0] == 0 and tools.mode == "auto":
        return None
    return best


def _next_named(
    messages: tuple[ChatMessage, ...], specs: tuple[ToolSpec, ...], wanted: set[str]
) -> ToolSpec | None:
    called: set[str] = set()
    for message in reversed(messages):
        if message.role == "user":
            break
        called.update(call.name for call in message.tool_calls)
    named = [
        ((_score(tool, wanted), -i), tool)
        for i, tool in enumerate(specs)
        if tool.name not in called and _words(tool.name) & wanted
    ]
    return max(named)[1] if named else None


def choose_tool_call(request: UpstreamRequest) -> ToolCall | None:
    """The call the offline provider makes for ``request``, or None to answer in text."""
    text = _last_user_text(request.messages)
    tool = _pick(request, text)
    if tool is None:
        return None
    hints = _Hints(text, _result_phrases(request.messages))
    arguments = json.dumps(_object(tool.parameters, hints, 0), separators=(",", ":"))
    seed = json.dumps(
        [[m.role, m.content, m.tool_call_id] for m in request.messages] + [tool.name, arguments],
        separators=(",", ":"),
    )
    call_id = "call_offline_" + hashlib.sha256(seed.encode()).hexdigest()[:24]
    return ToolCall(id=call_id, name=tool.name, arguments=arguments)


# --- arguments from a JSON Schema -------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Hints:
    """What arguments are filled from: the user's message and this turn's results."""

    text: str
    phrases: tuple[str, ...]


def _result_phrases(messages: tuple[ChatMessage, ...]) -> tuple[str, ...]:
    """The phrases the tool results since the last user message listed, in order."""
    results: list[str] = []
    for message in reversed(messages):
        if message.role == "user":
            break
        if message.role == "tool":
            results.append(message.content)
    found: list[str] = []
    for content in reversed(results):
        try:
            data = json.loads(content)
        except ValueError:
            continue
        _collect_phrases(data, found, 0)
    return tuple(found)


def _collect_phrases(data: Any, found: list[str], depth: int) -> None:
    if depth > _MAX_DEPTH or len(found) >= _PHRASES_MAX:
        return
    if isinstance(data, list):
        for item in data:
            _collect_phrases(item, found, depth + 1)
    elif isinstance(data, dict):
        for field in _PHRASE_FIELDS:
            value = data.get(field)
            if isinstance(value, str) and value.strip() and value not in found:
                found.append(value)
                return
        for value in data.values():
            _collect_phrases(value, found, depth + 1)


def _wanted_count(text: str) -> int | None:
    """N of "the top N" / "first three" in ``text``, if it says one."""
    top = _TOP_N.search(text)
    if top is None:
        return None
    word = top.group(1).lower()
    return int(word) if word.isdigit() else _COUNTS[word]


def _phrase_list(schema: dict[str, Any], hints: _Hints) -> list[str]:
    bounds = (_wanted_count(hints.text), schema.get("maxItems"), len(hints.phrases))
    count = max(1, min(n for n in bounds if isinstance(n, int)))
    items = schema.get("items")
    limit = items.get("maxLength") if isinstance(items, dict) else None
    return [p[:limit] if isinstance(limit, int) else p for p in hints.phrases[:count]]


def _object(schema: dict[str, Any], hints: _Hints, depth: int) -> dict[str, Any]:
    properties = schema.get("properties")
    required = schema.get("required")
    if not isinstance(properties, dict) or not isinstance(required, list):
        return {}
    values: dict[str, Any] = {}
    for name in required:
        if isinstance(name, str):
            prop = properties.get(name)
            values[name] = _value(name, prop if isinstance(prop, dict) else {}, hints, depth + 1)
    return values


def _type_of(schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    return kind if isinstance(kind, str) else None


def _value(name: str, schema: dict[str, Any], hints: _Hints, depth: int) -> Any:
    text = hints.text
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        named = [v for v in enum if re.search(rf"\b{re.escape(str(v))}\b", text, re.IGNORECASE)]
        return named[0] if named else schema.get("default", enum[0])
    kind = _type_of(schema)
    if kind in ("integer", "number"):
        return _number(name, schema, text, integer=kind == "integer")
    if "default" in schema and kind != "string":
        return schema["default"]
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    if kind == "object":
        return _object(schema, hints, depth) if depth < _MAX_DEPTH else {}
    if kind == "array":
        items = schema.get("items")
        if isinstance(items, dict) and depth < _MAX_DEPTH and _type_of(items) in ("string", None):
            if hints.phrases and _type_of(items) == "string":
                return _phrase_list(schema, hints)
            return [_value(name, items, hints, depth + 1)]
        return []
    return _string(name, schema, text)


def _number(name: str, schema: dict[str, Any], text: str, *, integer: bool) -> int | float:
    value: float | None = None
    for word in _words(name):
        # "limit 5", "5 results", "top: 3"
        near = re.search(rf"\b{word}s?\W{{1,3}}{_NUMBER}|{_NUMBER}\s+{word}", text, re.IGNORECASE)
        if near:
            value = float(near.group(1) or near.group(2))
            break
    default = schema.get("default")
    if value is None and isinstance(default, int | float):
        value = float(default)
    numbers = re.findall(_NUMBER, text)
    if value is None and len(numbers) == 1:
        value = float(numbers[0])
    if value is None:
        low = schema.get("minimum", 1)
        value = float(low) if isinstance(low, int | float) else 1.0
    low, high = schema.get("minimum"), schema.get("maximum")
    if isinstance(low, int | float):
        value = max(value, float(low))
    if isinstance(high, int | float):
        value = min(value, float(high))
    return int(value) if integer else value


def _string(name: str, schema: dict[str, Any], text: str) -> str:
    labelled = re.search(rf"\b{re.escape(name)}\s*[:=]\s*([^,;\n]+)", text, re.IGNORECASE)
    quoted = _QUOTED.search(text)
    if labelled:
        value = labelled.group(1).strip()
    elif isinstance(schema.get("default"), str):
        value = schema["default"]
    elif quoted:
        value = quoted.group(1).strip()
    else:
        value = _subject(text) or name
    limit = schema.get("maxLength")
    return value[:limit] if isinstance(limit, int) and limit >= 0 else value


# --- answering a tool result ------------------------------------------------------


def summarise_tool_result(messages: tuple[ChatMessage, ...]) -> str:
    """A text answer saying what the tool results after the last assistant turn returned."""
    results: list[ChatMessage] = []
    for message in reversed(messages):
        if message.role != "tool":
            break
        results.append(message)
    names = {
        call.id: call.name
        for message in messages
        if message.role == "assistant"
        for call in message.tool_calls
    }
    lines = [f"{OFFLINE_NOTE}."]
    for result in reversed(results):
        name = names.get(result.tool_call_id or "", "the tool")
        lines.append(f"The tool {name} returned: {_describe(result.content)}")
    return "\n".join(lines)


def _describe(content: str) -> str:
    try:
        data = json.loads(content)
    except ValueError:
        data = None
    if isinstance(data, dict):
        shown = [f"{key}: {_short(value)}" for key, value in list(data.items())[:_RESULT_ITEMS]]
        more = len(data) - len(shown)
        text = "; ".join(shown) + (f"; and {more} more fields" if more > 0 else "")
    elif isinstance(data, list):
        shown = [_short(item) for item in data[:_RESULT_ITEMS]]
        text = f"{len(data)} item(s): " + "; ".join(shown)
    elif isinstance(data, str):
        text = data.strip() or "nothing"
    else:
        text = content.strip() or "nothing"
    return text if len(text) <= _RESULT_CHARS else text[: _RESULT_CHARS - 3] + "..."


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."
