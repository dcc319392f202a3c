"""Template bodies drafted by the AI Routing Engine on the caller's behalf."""

from __future__ import annotations

from typing import Any

from xynergy.marketing_engine.clients import generate_text
from xynergy.marketing_engine.config import MarketingSettings
from xynergy.marketing_engine.templates.builtin import DEFAULT_PHASES
from xynergy.marketing_engine.templates.schemas import TemplateBody
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.runtime import Platform

__all__ = ["draft_body"]

_DRAFT_LINE_MAX = 500
_DRAFT_LINES_MAX = 20


async def draft_body(
    *,
    platform: Platform,
    caller: AuthContext,
    business_type: str,
    industry: str,
    marketing: MarketingSettings,
) -> dict[str, Any]:
    """A template body drafted through the AI Routing Engine, on the caller's behalf."""
    answer = await generate_text(
        platform.services,
        caller=caller,
        task="campaign",
        prompt=(
            f"Draft marketing campaign key messages for a {business_type} business "
            f"in the {industry} industry, one per line."
        ),
        max_tokens=marketing.campaign_ai_max_tokens,
    )
    lines = [
        line.strip()[:_DRAFT_LINE_MAX]
        for line in str(answer.get("text", "")).splitlines()
        if line.strip()
    ][:_DRAFT_LINES_MAX]
    summary = f"AI-drafted template for {business_type} ({industry})."
    return TemplateBody.model_validate(
        {
            "summary": summary,
            "key_messages": lines or [summary],
            "default_tactics": lines or [summary],
            "phases": list(DEFAULT_PHASES),
        }
    ).model_dump(mode="json")
