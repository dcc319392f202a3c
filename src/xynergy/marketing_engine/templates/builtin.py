"""Built-in templates for common business types; each serves every industry ("generic").

These are data, not tunables: a tenant replaces any of them with its own version
through the template API, and a business type not listed here gets an AI draft.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from xynergy.marketing_engine.templates.schemas import TemplateBody

__all__ = [
    "BUILTIN_TEMPLATES",
    "BUILTIN_VERSION",
    "DEFAULT_PHASES",
    "GENERIC_INDUSTRY",
    "builtin_template",
]

GENERIC_INDUSTRY = "generic"
BUILTIN_VERSION = 1

_UTM_MEDIUM = {
    "email": "email",
    "social": "social",
    "search": "cpc",
    "display": "display",
    "content": "content",
    "video": "video",
}
DEFAULT_PHASES: tuple[dict[str, Any], ...] = (
    {"name": "Launch", "share_percent": 20},
    {"name": "Grow", "share_percent": 50},
    {"name": "Convert and retain", "share_percent": 30},
)


def _body(
    summary: str, messages: list[str], default: list[str], tactics: dict[str, list[str]]
) -> dict[str, Any]:
    body = TemplateBody.model_validate(
        {
            "summary": summary,
            "key_messages": messages,
            "default_tactics": default,
            "channel_tactics": tactics,
            "utm_medium": _UTM_MEDIUM,
            "phases": list(DEFAULT_PHASES),
        }
    )
    return body.model_dump(mode="json")


_RAW: dict[str, dict[str, Any]] = {
    "saas": _body(
        "Software as a service: win trials, turn them into paying subscriptions.",
        ["Time to value in minutes", "Integrates with the tools you use", "Cancel any time"],
        ["Publish a product walkthrough", "Offer a free trial"],
        {
            "email": ["Trial onboarding sequence", "Feature announcement newsletter"],
            "search": ["Bid on competitor-alternative terms", "Problem-aware keywords"],
            "content": ["Comparison pages", "How-to guides for core use cases"],
            "social": ["Customer success clips", "Founder-led product updates"],
        },
    ),
    "ecommerce": _body(
        "Online store: bring shoppers to products and bring them back to buy again.",
        ["Free returns", "Fast delivery", "Loved by customers like you"],
        ["Feature best sellers", "Seasonal offer"],
        {
            "email": ["Abandoned-cart reminders", "New arrivals digest"],
            "social": ["User-generated product photos", "Shoppable posts"],
            "display": ["Retarget product viewers", "Dynamic product ads"],
            "search": ["Shopping campaigns for best sellers"],
        },
    ),
    "local_service": _body(
        "Local service business: be the trusted choice nearby.",
        ["Trusted by your neighbours", "Book in minutes", "Licensed and insured"],
        ["Collect and show reviews", "Local offer for first-time customers"],
        {
            "search": ["Local service keywords with location", "Call-only ads"],
            "social": ["Before-and-after stories", "Community event posts"],
            "email": ["Seasonal maintenance reminders"],
        },
    ),
    "agency": _body(
        "Agency: show expertise and turn it into qualified conversations.",
        ["Results you can measure", "A team that knows your market", "Case studies first"],
        ["Publish a case study", "Offer a free audit"],
        {
            "content": ["Industry reports", "Case studies with numbers"],
            "social": ["Thought-leadership posts", "Team behind-the-scenes"],
            "email": ["Monthly insights newsletter"],
            "video": ["Short strategy explainers"],
        },
    ),
    "mobile_app": _body(
        "Mobile app: drive installs and keep users opening the app.",
        ["Free to download", "Made for your day", "Rated highly by users"],
        ["Optimise the store listing", "Referral reward"],
        {
            "social": ["Short feature demos", "Creator partnerships"],
            "video": ["App preview ads"],
            "search": ["App install campaigns on intent keywords"],
            "display": ["Re-engagement ads for lapsed users"],
        },
    ),
}

# Read-only views: no request can change a built-in template.
BUILTIN_TEMPLATES: MappingProxyType[str, MappingProxyType[str, Any]] = MappingProxyType(
    {name: MappingProxyType(body) for name, body in _RAW.items()}
)


def builtin_template(business_type: str) -> dict[str, Any] | None:
    """A copy of the built-in body for ``business_type``, or None."""
    body = BUILTIN_TEMPLATES.get(business_type)
    return TemplateBody.model_validate(dict(body)).model_dump(mode="json") if body else None
