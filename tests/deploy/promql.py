"""The series a PromQL expression reads: metric names and the labels it names.

A small tokenizer, not a full parser (no well-kept PromQL parser is published for
Python): it knows enough of the grammar to tell a metric name from everything
else that looks like a word, and refuses what it does not know rather than guess.

* strings, numbers and durations are skipped; so is everything in ``[...]``
  (ranges, subqueries) and Grafana's variables (``$__rate_interval``, ``${x}``);
* ``{...}`` holds label matchers: their label names are kept for the selector
  they follow (``{__name__="x"}`` names metric ``x``);
* ``by``, ``without``, ``on``, ``ignoring``, ``group_left`` and ``group_right``
  are followed by a list of labels, kept as grouping labels;
* a word followed by ``(`` is a function or an aggregation, and must be a known
  one (an unknown one raises: a misspelt ``rate`` is not a metric);
* any other word is a metric name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Expression", "Selector", "UnknownFunction", "grafana_query_expression", "parse"]

FUNCTIONS = frozenset(
    """
    abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes
    clamp clamp_max clamp_min cos cosh count_over_time day_of_month day_of_week day_of_year
    days_in_month deg delta deriv double_exponential_smoothing exp floor histogram_avg
    histogram_count histogram_fraction histogram_quantile histogram_stddev histogram_stdvar
    histogram_sum holt_winters hour idelta increase irate label_join label_replace
    last_over_time ln log10 log2 mad_over_time max_over_time min_over_time minute month pi
    predict_linear present_over_time quantile_over_time rad rate resets round scalar sgn sin
    sinh sort sort_by_label sort_by_label_desc sort_desc sqrt stddev_over_time
    stdvar_over_time sum_over_time tan tanh time timestamp vector year start end
    """.split()
)
AGGREGATIONS = frozenset(
    """
    sum min max avg group stddev stdvar count count_values bottomk topk quantile limitk
    limit_ratio
    """.split()
)
_GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_OPERATORS = frozenset({"and", "or", "unless", "atan2", "bool", "offset", "inf", "nan"})

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    |(?P<comment>\#[^\n]*)
    |(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
    |(?P<variable>\$(?:\{[^}]*\}|\w+))
    |(?P<duration>(?:\d+(?:ms|[smhdwy]))+(?![\w.]))
    |(?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    |(?P<word>[A-Za-z_:][A-Za-z0-9_:]*)
    |(?P<punct>=~|!~|!=|==|<=|>=|[-+*/%^(){}\[\],<>=@])
    """,
    re.VERBOSE,
)
_CLOSING = {"(": ")", "[": "]", "{": "}"}


class UnknownFunction(ValueError):
    """A word called like a function that PromQL has no function or aggregation of."""


@dataclass(frozen=True)
class Selector:
    """One series selector: its metric name and the labels its matchers name."""

    metric: str
    labels: frozenset[str]


@dataclass
class Expression:
    """What one expression reads."""

    selectors: list[Selector] = field(default_factory=list)
    grouping: set[str] = field(default_factory=set)

    @property
    def metrics(self) -> set[str]:
        """Every metric name the expression reads."""
        return {selector.metric for selector in self.selectors}


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str


def _tokens(expression: str) -> list[_Token]:
    found: list[_Token] = []
    position = 0
    while position < len(expression):
        match = _TOKEN.match(expression, position)
        if match is None:
            raise ValueError(
                f"cannot read {expression[position : position + 20]!r} in {expression!r}"
            )
        kind = match.lastgroup or ""
        if kind not in {"space", "comment"}:
            found.append(_Token(kind, match.group()))
        position = match.end()
    return found


def _closing(tokens: list[_Token], start: int) -> int:
    """The index of the bracket closing the one at ``start`` (brackets of one kind nest)."""
    opening = tokens[start].text
    depth = 0
    for index in range(start, len(tokens)):
        token = tokens[index]
        if token.kind != "punct":
            continue
        if token.text == opening:
            depth += 1
        elif token.text == _CLOSING[opening]:
            depth -= 1
            if depth == 0:
                return index
    raise ValueError(f"unclosed {opening!r}")


def _matchers(tokens: list[_Token]) -> tuple[set[str], str | None]:
    """The label names of a ``{...}``'s matchers, and the metric ``__name__`` names."""
    labels: set[str] = set()
    named: str | None = None
    for index, token in enumerate(tokens[:-2]):
        operator = tokens[index + 1]
        if token.kind == "word" and operator.text in {"=", "!=", "=~", "!~"}:
            if token.text == "__name__":
                value = tokens[index + 2]
                if operator.text != "=" or value.kind != "string":
                    raise ValueError('only __name__="..." is understood')
                named = value.text[1:-1]
            else:
                labels.add(token.text)
    return labels, named


def _next(tokens: list[_Token], index: int) -> _Token | None:
    return tokens[index] if index < len(tokens) else None


def parse(expression: str) -> Expression:
    """What ``expression`` reads (see the module docstring)."""
    tokens = _tokens(expression)
    result = Expression()
    index = 0
    while index < len(tokens):
        token = tokens[index]
        following = _next(tokens, index + 1)
        if token.kind == "punct" and token.text == "[":
            index = _closing(tokens, index) + 1
        elif token.kind == "punct" and token.text == "{":
            # A selector without a metric before it: {__name__="..."}.
            end = _closing(tokens, index)
            labels, named = _matchers(tokens[index + 1 : end])
            if named is None:
                raise ValueError(f"a selector without a metric name in {expression!r}")
            result.selectors.append(Selector(named, frozenset(labels)))
            index = end + 1
        elif token.kind != "word":
            index += 1
        elif token.text.lower() in _GROUPING:
            index += 1
            if following is not None and following.text == "(":
                end = _closing(tokens, index)
                result.grouping |= {t.text for t in tokens[index + 1 : end] if t.kind == "word"}
                index = end + 1
        elif token.text.lower() in _OPERATORS:
            index += 1
        elif token.text.lower() in FUNCTIONS | AGGREGATIONS:
            if following is None or following.text not in {"(", "by", "without"}:
                raise ValueError(f"{token.text!r} must be called in {expression!r}")
            index += 1
        elif following is not None and following.text == "(":
            raise UnknownFunction(f"no PromQL function {token.text!r} (in {expression!r})")
        else:
            labels: set[str] = set()
            index += 1
            if following is not None and following.text == "{":
                end = _closing(tokens, index)
                labels, _ = _matchers(tokens[index + 1 : end])
                index = end + 1
            result.selectors.append(Selector(token.text, frozenset(labels)))
    return result


def grafana_query_expression(query: str) -> str:
    """The PromQL inside a Grafana variable query (``label_values(<selector>, label)``)."""
    match = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", query, re.DOTALL)
    return match.group(1) if match else query
