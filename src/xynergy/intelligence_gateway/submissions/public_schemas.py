"""Request and response schemas of the public intake.

Hard caps (``max_length``) are the column sizes and ``IntakeSettings``' upper
limits. The configured bounds come from the ``IntakeSettings`` passed as
validation context (``{"bounds": intake}``), so they are reported per field like
every other error; they apply to what the visitor sent. Strings are stripped; an
empty optional field counts as absent.

The free text (name, company, subject, the message, tracking) is display text,
sanitised by its type (:class:`~xynergy.platform.text.PlainText`); the e-mail
address and website are normalised here and then escaped the same way, as stored.
Spam signals that markup would hide (links in ``href``) are counted on what was sent.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from xynergy.intelligence_gateway.config import IntakeSettings
from xynergy.intelligence_gateway.form_tokens import TOKEN_MAX_CHARS
from xynergy.intelligence_gateway.submissions.spam import count_links
from xynergy.platform.text import (
    MAX_ESCAPE_EXPANSION,
    PlainText,
    RawText,
    SanitisedText,
    escaped_within,
    sent_length,
)

__all__ = [
    "HONEYPOT_FIELD",
    "UTM_FIELDS",
    "BetaApplicationCreate",
    "ContactMessageCreate",
    "FormTokenIssued",
    "PublicSubmission",
    "SubmissionReceived",
    "max_body_bytes",
    "normalise_email",
]

# The column sizes (and IntakeSettings' upper limits): no setting can go past them.
NAME_HARD_MAX = 1000
EMAIL_HARD_MAX = 320
COMPANY_HARD_MAX = 1000
WEBSITE_HARD_MAX = 8192
SUBJECT_HARD_MAX = 1000
TEXT_HARD_MAX = 100_000
TRACKING_HARD_MAX = 2000
HONEYPOT_FIELD = "nickname"
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
# A JSON string may spell one character as a 12-byte surrogate pair (\uXXXX\uXXXX).
_JSON_BYTES_PER_CHAR = 12
# Keys, quotes, separators and some whitespace around the values.
_JSON_SYNTAX_BYTES = 4096

_EMAIL_LOCAL_MAX = 64
_EMAIL_DOMAIN_MAX = 253
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_EMAIL_LOCAL = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
_DOMAIN_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_TOP_LEVEL_LABEL = re.compile(r"[a-z]{2,63}|xn--[a-z0-9-]{1,59}")
_URL_SCHEMES = frozenset({"http", "https"})
_URL_FORBIDDEN = re.compile(r"[\s<>\"'`\\]")
# C0/C1 controls: none belongs in an address, a URL or a token (the text types
# refuse them in the free text).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
# Fields whose links count as spam signals, as sent.
_LINK_FIELDS = ("name", "company", "subject", "use_case", "message")
# The message's column is TEXT: it holds the longest message once escaped.
_ESCAPED_TEXT_MAX = TEXT_HARD_MAX * MAX_ESCAPE_EXPANSION
# Normalised values stored escaped like the display text, and their column sizes.
_ESCAPED_AS_STORED = {"email": EMAIL_HARD_MAX, "website": WEBSITE_HARD_MAX}

Name = Annotated[str, PlainText(max_length=NAME_HARD_MAX, min_length=1)]
Email = Annotated[str, RawText(max_length=EMAIL_HARD_MAX, min_length=1)]
Tracking = Annotated[str, PlainText(max_length=TRACKING_HARD_MAX)]
Text = Annotated[
    str, PlainText(max_length=TEXT_HARD_MAX, stored_max_length=_ESCAPED_TEXT_MAX, multiline=True)
]


def _invalid(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


def normalise_email(raw: str) -> str:
    """``local@domain`` with the domain lowercased (IDNA-encoded if not ASCII).

    Raises ValueError for anything outside dot-atom syntax (no quoted local parts,
    no address literals), a local part over 64 or a domain over 253 characters.
    """
    local, at, domain = raw.rpartition("@")
    if not at or len(local) > _EMAIL_LOCAL_MAX or not _EMAIL_LOCAL.fullmatch(local):
        raise ValueError("local part")
    domain = domain.lower()
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ValueError("domain") from exc
    labels = domain.split(".")
    if (
        len(domain) > _EMAIL_DOMAIN_MAX
        or len(labels) < 2
        or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels)
        or not _TOP_LEVEL_LABEL.fullmatch(labels[-1])
    ):
        raise ValueError("domain")
    return f"{local}@{domain}"


def _normalise_website(raw: str) -> str:
    """An http(s) URL; a bare host such as ``acme.example`` gets ``https://``."""
    url = raw if "://" in raw else "https://" + raw
    if _URL_FORBIDDEN.search(url):
        raise ValueError("characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as exc:
        raise ValueError("syntax") from exc
    if parts.scheme.lower() not in _URL_SCHEMES or not host:
        raise ValueError("scheme or host")
    return url


class SubmissionReceived(BaseModel):
    """The one answer to every accepted submission: new, duplicate, retried or spam."""

    status: Literal["received"] = "received"


class FormTokenIssued(BaseModel):
    token: str = Field(max_length=TOKEN_MAX_CHARS, description="Send back as form_token.")
    min_fill_seconds: float = Field(
        description="A submission sooner than this after the token was issued is not accepted."
    )


class PublicSubmission(BaseModel):
    """Fields every public form has: who, tracking, and the anti-spam fields."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    # field -> IntakeSettings attribute holding its configured bound
    max_chars_settings: ClassVar[dict[str, str]] = {
        "name": "name_max_chars",
        "email": "email_max_chars",
        "source": "tracking_max_chars",
        **dict.fromkeys(UTM_FIELDS, "tracking_max_chars"),
        HONEYPOT_FIELD: "tracking_max_chars",
    }
    min_chars_settings: ClassVar[dict[str, str]] = {}

    name: Name
    email: Email = Field(description="Stored with its domain lowercased.")
    source: Tracking | None = Field(default=None, description="Where the visitor came from.")
    utm_source: Tracking | None = None
    utm_medium: Tracking | None = None
    utm_campaign: Tracking | None = None
    utm_term: Tracking | None = None
    utm_content: Tracking | None = None
    form_token: Annotated[str, RawText(max_length=TOKEN_MAX_CHARS)] | None = Field(
        default=None,
        description="From GET /api/forms/{public_id}/token when the page loaded.",
    )
    # Never stored, only tested for emptiness: markup must not hide a bot's answer.
    nickname: Annotated[str, RawText(max_length=TRACKING_HARD_MAX)] = Field(
        default="",
        description="Honeypot: render it hidden (autocomplete=off, tabindex=-1); people leave it empty.",
    )

    # Links in the free text as sent, before sanitising dropped any ``href``.
    _links_sent: int = PrivateAttr(default=0)

    @property
    def body(self) -> str:
        """The free text: the use case or the message."""
        raise NotImplementedError

    @property
    def links_sent(self) -> int:
        """Links (``http(s)://``, ``www.``) the free text held as sent, markup included."""
        return self._links_sent

    @model_validator(mode="wrap")
    @classmethod
    def _count_links_as_sent(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        submission = handler(data)
        if isinstance(data, dict) and isinstance(submission, PublicSubmission):
            sent = [data.get(name) for name in _LINK_FIELDS]
            submission._links_sent = count_links(*(text for text in sent if isinstance(text, str)))
        return submission

    @property
    def utm(self) -> dict[str, str]:
        return {name: value for name in UTM_FIELDS if (value := getattr(self, name))}

    @field_validator("*", mode="after")
    @classmethod
    def _clean_and_bounded(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str):
            return value
        field = info.field_name or ""
        if not value and cls.model_fields[field].default is None:
            return None
        # The display text was checked and sanitised by its type.
        if not isinstance(value, SanitisedText) and _CONTROL.search(value):
            raise _invalid("string_control_characters", "control characters are not allowed")
        if field == "email":
            try:
                value = normalise_email(value)
            except ValueError:
                raise _invalid("email_invalid", "value is not a valid e-mail address") from None
        elif field == "website":
            try:
                value = _normalise_website(value)
            except ValueError:
                raise _invalid("url_invalid", "value is not a valid http(s) URL") from None
        bounds = (info.context or {}).get("bounds")
        if isinstance(bounds, IntakeSettings):
            _check_bounds(cls, field, value, bounds)
        if field in _ESCAPED_AS_STORED:
            value = escaped_within(value, _ESCAPED_AS_STORED[field])
        return value


def _check_bounds(
    model: type[PublicSubmission], field: str, value: str, bounds: IntakeSettings
) -> None:
    maximum_setting = model.max_chars_settings.get(field)
    if maximum_setting is not None:
        maximum = getattr(bounds, maximum_setting)
        if sent_length(value) > maximum:
            raise PydanticCustomError(
                "string_too_long",
                "String should have at most {max_length} characters",
                {"max_length": maximum},
            )
    minimum_setting = model.min_chars_settings.get(field)
    if minimum_setting is not None:
        minimum = getattr(bounds, minimum_setting)
        if len(value) < minimum:
            raise PydanticCustomError(
                "string_too_short",
                "String should have at least {min_length} characters",
                {"min_length": minimum},
            )


class BetaApplicationCreate(PublicSubmission):
    """A beta application; one per e-mail address per form."""

    max_chars_settings: ClassVar[dict[str, str]] = {
        **PublicSubmission.max_chars_settings,
        "company": "company_max_chars",
        "website": "website_max_chars",
        "use_case": "use_case_max_chars",
    }
    min_chars_settings: ClassVar[dict[str, str]] = {"use_case": "use_case_min_chars"}

    company: Annotated[str, PlainText(max_length=COMPANY_HARD_MAX)] | None = None
    website: Annotated[str, RawText(max_length=WEBSITE_HARD_MAX)] | None = Field(
        default=None, description="An http(s) URL; a bare host gets https://."
    )
    use_case: Text = Field(description="What the applicant wants to do (10-2,000 characters).")

    @property
    def body(self) -> str:
        return self.use_case


class ContactMessageCreate(PublicSubmission):
    """A message through a contact form."""

    max_chars_settings: ClassVar[dict[str, str]] = {
        **PublicSubmission.max_chars_settings,
        "subject": "subject_max_chars",
        "message": "message_max_chars",
    }
    min_chars_settings: ClassVar[dict[str, str]] = {"message": "message_min_chars"}

    subject: Annotated[str, PlainText(max_length=SUBJECT_HARD_MAX)] | None = None
    message: Text

    @property
    def body(self) -> str:
        return self.message


def max_body_bytes(bounds: IntakeSettings) -> int:
    """The largest JSON body a valid submission of either kind could need."""
    chars = (
        bounds.name_max_chars
        + bounds.email_max_chars
        + max(
            bounds.company_max_chars + bounds.website_max_chars + bounds.use_case_max_chars,
            bounds.subject_max_chars + bounds.message_max_chars,
        )
        + bounds.tracking_max_chars * (2 + len(UTM_FIELDS))
        + TOKEN_MAX_CHARS
    )
    return chars * _JSON_BYTES_PER_CHAR + _JSON_SYNTAX_BYTES
