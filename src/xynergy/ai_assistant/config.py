"""AI Assistant settings, prefix ``XYNERGY_ASSISTANT_`` (e.g. ``XYNERGY_ASSISTANT_MESSAGE_MAX_CHARS``)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["MESSAGE_HARD_MAX", "TITLE_HARD_MAX", "AssistantSettings"]

# Parsing caps (and the settings' upper limits): no setting can go past them.
MESSAGE_HARD_MAX = 100_000
TITLE_HARD_MAX = 200
# The System Runtime's definition names; expected tokens of one action's workflow.
_DEFINITION_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_EXPECTED_TOKENS_MAX = 10_000_000


class AssistantSettings(BaseSettings):
    """Bounds, budgets and TTLs of the AI Assistant."""

    model_config = SettingsConfigDict(env_prefix="XYNERGY_ASSISTANT_", extra="ignore", frozen=True)

    # --- bounds ----------------------------------------------------------------------
    message_max_chars: int = Field(
        default=8_000,
        ge=1,
        le=MESSAGE_HARD_MAX,
        description="Longest user message, in characters.",
    )
    messages_per_conversation_max: int = Field(
        default=2_000,
        ge=2,
        le=1_000_000,
        description="Most user and assistant messages in one conversation (summaries not counted).",
    )
    conversations_per_key_max: int = Field(
        default=1_000,
        ge=1,
        le=1_000_000,
        description="Most conversations one API key may own at once.",
    )
    retention_inactive_days: int = Field(
        default=90,
        ge=1,
        le=3660,
        description="Days without a message after which a conversation is deleted (by the "
        "System Runtime's maintenance schedule, XYNERGY_RUNTIME_MAINTENANCE_EVERY_HOURS).",
    )
    retention_batch: int = Field(
        default=500,
        ge=1,
        le=100_000,
        description="Conversations deleted per transaction by the retention job (it repeats "
        "batches until none is left).",
    )
    export_messages_max: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="Most messages one export holds (the newest; older ones are noted as left out).",
    )

    # --- model calls -----------------------------------------------------------------
    default_model: str = Field(
        default="xynergy-offline",
        min_length=1,
        max_length=100,
        description="Catalogue model a message uses when it names none.",
    )
    models_allowed: tuple[str, ...] = Field(
        default=(),
        description="Catalogue models a message may name; empty: any (the AI Routing Engine "
        "refuses names it does not know). JSON list.",
    )
    reply_max_tokens: int = Field(
        default=1_024, ge=1, le=65_536, description="max_tokens of each reply."
    )
    system_prompt: str = Field(
        default=(
            "You are the Xynergy assistant for a marketing team. Answer clearly and briefly; "
            "say when you do not know."
        ),
        min_length=1,
        max_length=20_000,
        description="System prompt of every reply.",
    )

    # --- tools (each turn) ------------------------------------------------------------
    tools_enabled: tuple[str, ...] | None = Field(
        default=None,
        description="Tools the assistant may offer (JSON list of names); null: every tool. A "
        "tool is offered only to a key holding its scopes either way.",
    )
    tool_calls_per_turn_max: int = Field(
        default=4,
        ge=0,
        le=64,
        description="Most tool calls one turn runs or proposes; calls past it are not run "
        "(the model is told so) and the reply is asked for without tools.",
    )
    tool_result_max_chars: int = Field(
        default=4_000,
        ge=200,
        le=1_000_000,
        description="Longest tool result fed back to the model (and stored), in characters; "
        "a longer one is cut with a note saying so.",
    )
    action_ai_tokens: dict[str, tuple[int, int]] = Field(
        default_factory=lambda: {"generate-campaign": (1_000, 1_200)},
        max_length=256,
        description="AI tokens (prompt, completion) a proposed action's workflow is expected "
        "to use, by workflow definition: its estimated cost is these at the catalogue's "
        "highest prices (an upper bound, whichever model the AI Routing Engine picks). "
        "generate-campaign: a personalisation call and, when its template is not cached, a "
        "draft call, each of at most XYNERGY_MARKETING_CAMPAIGN_AI_MAX_TOKENS (600) "
        "completion tokens. A definition not listed has no estimate. JSON object.",
    )
    turn_tokens_max: int = Field(
        default=32_000,
        ge=64,
        le=10_000_000,
        description="Most tokens (prompt and completion, every model call of the turn) one "
        "turn may use; once passed, no more tools run and the turn ends with what it has.",
    )

    # --- context ---------------------------------------------------------------------
    context_budget_tokens: int = Field(
        default=6_000,
        ge=64,
        le=10_000_000,
        description="Most prompt tokens (estimated as the AI Routing Engine does) one reply may "
        "send: system prompt, summary and the most recent turns that fit. The model's context "
        "window (as the AI Routing Engine lists it) minus reply_max_tokens lowers it further.",
    )
    context_recent_share: float = Field(
        default=0.5,
        gt=0,
        lt=1,
        description="Share of the budget recent turns keep after a summary is made; the rest "
        "is room to grow before the next summary.",
    )
    context_fetch_max: int = Field(
        default=500,
        ge=2,
        le=100_000,
        description="Most unsummarised messages read to build one context.",
    )
    summary_max_tokens: int = Field(
        default=400, ge=16, le=8_192, description="max_tokens of a summary of older turns."
    )
    summary_input_budget_tokens: int = Field(
        default=6_000,
        ge=64,
        le=10_000_000,
        description="Most tokens of older turns one summary call reads (the newest of them; "
        "anything older is noted as left out).",
    )
    summary_prompt: str = Field(
        default=(
            "Summarise the conversation so far for yourself, keeping facts, names, numbers, "
            "decisions and open questions. Be concise."
        ),
        min_length=1,
        max_length=20_000,
        description="Instruction of a summary call.",
    )
    model_info_ttl_seconds: float = Field(
        default=60,
        gt=0,
        le=86_400,
        description="How long what the AI Routing Engine says about a model (GET /v1/models: "
        "its context window, its prices) stays cached (namespace assistant-models); a "
        "catalogue reload reaches the assistant within it.",
    )
    context_cache_ttl_seconds: float = Field(
        default=900,
        gt=0,
        description="How long a conversation's built context stays cached after its last "
        "activity (namespace assistant-context).",
    )

    # --- turns in flight -------------------------------------------------------------
    turns_in_flight_max: int = Field(
        default=256,
        ge=1,
        le=100_000,
        description="Replies generated at once by this process; more answer 503.",
    )
    stream_queue_size: int = Field(
        default=64,
        ge=1,
        le=10_000,
        description="Deltas buffered between a reply's generation and its stream.",
    )
    stream_heartbeat_seconds: float = Field(
        default=15, gt=0, description="Comment line sent on a quiet stream."
    )
    shutdown_grace_seconds: float = Field(
        default=10,
        gt=0,
        description="How long shutdown waits for replies in flight to be stored before "
        "cancelling them.",
    )

    @field_validator("action_ai_tokens")
    @classmethod
    def _expected_tokens(cls, value: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
        for name, tokens in value.items():
            if not _DEFINITION_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a workflow definition name")
            if not all(0 <= count <= _EXPECTED_TOKENS_MAX for count in tokens):
                raise ValueError(f"{name!r}: token counts go from 0 to {_EXPECTED_TOKENS_MAX}")
        return value

    @model_validator(mode="after")
    def _summary_fits(self) -> AssistantSettings:
        # A new message, the system prompt and a summary must fit the budget together,
        # or a turn could not be sent at all (the window module relies on it).
        chars_per_token, framing = 4, 4
        least = (
            -(-self.message_max_chars // chars_per_token)
            + -(-len(self.system_prompt) // chars_per_token)
            + self.summary_max_tokens
            + 3 * framing
            + 16  # the summary's prefix and the request framing
        )
        if least > self.context_budget_tokens:
            raise ValueError(
                f"context_budget_tokens must be at least {least}: the longest message, the "
                "system prompt and a summary must fit it together"
            )
        return self
