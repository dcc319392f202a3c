"""The platform's edge check for text no endpoint can handle (URL and JSON body)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.corpus import LONE_SURROGATE, json_bytes
from xynergy.platform.exceptions import ValidationFailed
from xynergy.platform.input_text import check_json_text, check_url_text, text_problem


def scope(path: bytes, query: bytes = b"") -> dict[str, Any]:
    return {"raw_path": path, "path": path.decode("latin-1"), "query_string": query}


class TestUrlText:
    @pytest.mark.parametrize(
        "query",
        [b"q=%00", b"q=a%00b", b"%00=x", b"q=%ED%A0%80", b"q=%FF", b"a=1&q=%C3"],
        ids=["nul", "nul-inside", "nul-name", "surrogate", "not-utf8", "truncated-utf8"],
    )
    def test_a_query_with_nul_or_bytes_that_are_not_utf8_is_refused(self, query: bytes) -> None:
        with pytest.raises(ValidationFailed, match="query"):
            check_url_text(scope(b"/api/content", query))

    @pytest.mark.parametrize("path", [b"/api/content/%00", b"/api/content/%ED%A0%80"])
    def test_a_path_with_nul_or_bytes_that_are_not_utf8_is_refused(self, path: bytes) -> None:
        with pytest.raises(ValidationFailed, match="path"):
            check_url_text(scope(path))

    @pytest.mark.parametrize(
        "query", [b"", b"q=caf%C3%A9", b"q=%F0%9F%98%80", b"q=a+b&limit=2", b"q=%25"]
    )
    def test_ordinary_unicode_passes(self, query: bytes) -> None:
        check_url_text(scope(b"/api/caf%C3%A9", query))

    def test_the_query_copy_in_an_asgi_raw_path_is_not_the_path(self) -> None:
        check_url_text(scope(b"/api/content?q=x", b"q=x"))


class TestJsonText:
    @pytest.mark.parametrize(
        "body",
        [
            json_bytes({"title": LONE_SURROGATE}),
            json_bytes({"title": "a\udc00"}),
            json_bytes({LONE_SURROGATE: "key"}),
            json_bytes([[{"deep": ["x", "\ud800\ud800\udc00"]}]]),
            b'{"title": "\xed\xa0\x80"}',
        ],
        ids=["high", "low", "key", "nested", "raw-bytes"],
    )
    def test_a_lone_surrogate_is_refused(self, body: bytes) -> None:
        with pytest.raises(ValidationFailed, match="surrogate"):
            check_json_text(body)

    @pytest.mark.parametrize(
        "body",
        [
            json_bytes({"emoji": "\U0001f600"}),
            '{"emoji": "\U0001f600"}'.encode(),
            # An escaped backslash followed by text that looks like an escape.
            b'{"text": "\\\\ud800"}',
            b"not json \\ud800",
            b"",
        ],
        ids=["escaped-pair", "utf8-pair", "escaped-backslash", "not-json", "empty"],
    )
    def test_everything_else_passes(self, body: bytes) -> None:
        check_json_text(body)


class TestTextProblem:
    @pytest.mark.parametrize(
        ("value", "problem"),
        [("a\x00", "NUL"), (LONE_SURROGATE, "surrogate"), ("caf\u00e9", None), ("", None)],
    )
    def test_what_no_database_can_store_is_named(self, value: str, problem: str | None) -> None:
        found = text_problem(value)
        assert found is None if problem is None else problem in (found or "")
