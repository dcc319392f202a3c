"""The platform's text types: one rule for every string a client sends."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from pydantic import BaseModel, ValidationError

from tests.corpus import LONE_SURROGATE, NUL
from xynergy.platform.text import (
    MAX_ESCAPE_EXPANSION,
    PlainText,
    RawText,
    RichText,
    SanitisedText,
    sent_length,
)

MAX = 40


class Display(BaseModel):
    line: Annotated[str, PlainText(max_length=MAX, min_length=1)] = "x"
    lines: Annotated[str, PlainText(max_length=MAX, multiline=True)] = ""
    roomy: Annotated[str, PlainText(max_length=MAX, stored_max_length=MAX * 5)] = ""
    rich: Annotated[str, RichText(max_length=100)] = ""


class Data(BaseModel):
    term: Annotated[str, RawText(max_length=MAX)] = ""
    prompt: Annotated[str, RawText(max_length=MAX, allow_nul=True)] = ""


def error_types(model: type[BaseModel], **fields: Any) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        model(**fields)
    return [error["type"] for error in caught.value.errors()]


class TestPlainText:
    def test_markup_is_removed_and_special_characters_escaped(self) -> None:
        assert Display(line="<b>Tom</b> & <i>Jerry</i>").line == "Tom &amp; Jerry"

    def test_a_script_and_its_content_are_removed(self) -> None:
        assert Display(line="Hi<script>alert(1)</script>!").line == "Hi!"

    def test_escaped_text_is_not_escaped_twice(self) -> None:
        assert Display(line="Tom &amp; Jerry").line == "Tom &amp; Jerry"

    def test_text_is_stripped_and_nfc_normalised(self) -> None:
        assert Display(line="  Cafe\u0301  ").line == "Caf\u00e9"

    @pytest.mark.parametrize("text", [NUL, "a" + NUL, LONE_SURROGATE, "a\udc00"])
    def test_nul_and_lone_surrogates_are_refused(self, text: str) -> None:
        assert error_types(Display, line=text)[0] in {"string_unsafe_text", "string_unicode"}

    @pytest.mark.parametrize("text", ["a\nb", "a\tb", "a\rb", "a\x1bb", "a\x85b"])
    def test_a_single_line_refuses_control_characters(self, text: str) -> None:
        assert error_types(Display, line=text) == ["string_control_characters"]

    def test_several_lines_keep_line_breaks_and_tabs(self) -> None:
        assert Display(lines="one\n\ttwo").lines == "one\n\ttwo"

    def test_several_lines_still_refuse_other_controls(self) -> None:
        assert error_types(Display, lines="a\x07b") == ["string_control_characters"]

    def test_nothing_left_once_markup_is_removed_is_too_short(self) -> None:
        assert error_types(Display, line="<script>alert(1)</script>") == ["string_too_short"]

    def test_the_maximum_counts_what_was_sent(self) -> None:
        assert error_types(Display, line="x" * (MAX + 1)) == ["string_too_long"]
        assert Display(line="<b>" + "x" * (MAX - 7) + "</b>").line == "x" * (MAX - 7)

    def test_text_that_outgrows_its_column_once_escaped_is_refused(self) -> None:
        assert error_types(Display, line="&" * MAX) == ["string_too_long"]
        assert Display(roomy="&" * MAX).roomy == "&amp;" * MAX
        assert MAX_ESCAPE_EXPANSION == len("&amp;")

    def test_the_length_sent_is_remembered(self) -> None:
        value = Display(line=" <b>ab</b> ").line

        assert isinstance(value, SanitisedText)
        assert (value, sent_length(value)) == ("ab", len("<b>ab</b>"))
        assert sent_length("plain") == len("plain")

    def test_the_schema_states_the_bounds(self) -> None:
        schema = Display.model_json_schema()["properties"]["line"]

        assert (schema["maxLength"], schema["minLength"]) == (MAX, 1)


class TestRichText:
    def test_allowlisted_markup_is_kept_and_the_rest_removed(self) -> None:
        sent = '<p onclick="x()">Hi <b>there</b><script>alert(1)</script></p>'

        assert Display(rich=sent).rich == "<p>Hi <b>there</b></p>"

    @pytest.mark.parametrize("text", [NUL, LONE_SURROGATE, "a\x07"])
    def test_text_no_database_can_store_is_refused(self, text: str) -> None:
        assert error_types(Display, rich=text)[0] in {
            "string_unsafe_text",
            "string_unicode",
            "string_control_characters",
        }


class TestRawText:
    def test_text_is_kept_as_sent(self) -> None:
        assert Data(term=" <b>x</b> & y ").term == " <b>x</b> & y "

    def test_nul_is_refused_unless_allowed(self) -> None:
        assert error_types(Data, term="a" + NUL) == ["string_unsafe_text"]
        assert Data(prompt="a" + NUL).prompt == "a" + NUL

    def test_a_lone_surrogate_is_always_refused(self) -> None:
        assert error_types(Data, term=LONE_SURROGATE)[0] in {"string_unsafe_text", "string_unicode"}
        assert error_types(Data, prompt=LONE_SURROGATE)[0] in {
            "string_unsafe_text",
            "string_unicode",
        }

    def test_a_surrogate_pair_is_one_character_and_accepted(self) -> None:
        assert Data(term="\U0001f600").term == "\U0001f600"


class TestDeclaration:
    def test_the_types_annotate_strings_only(self) -> None:
        with pytest.raises(TypeError):

            class _Wrong(BaseModel):
                count: Annotated[int, PlainText(max_length=MAX)]
