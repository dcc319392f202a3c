"""Track chosen suggestions as keywords in the ASO Engine, in one call.

The phrases go to the ASO Engine's bulk import as JSON lines, best effort, with
an idempotency key over the request, the tenant and the phrases, so a call
repeated within one request adds nothing twice. Phrases the research already saw tracked are not sent; a phrase
the import refuses is reported with the import's own reason.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from xynergy.marketing_engine.clients import ASO_ENGINE, call_json
from xynergy.marketing_engine.research.schemas import (
    Suggestion,
    TrackingRejection,
    TrackingReport,
)
from xynergy.marketing_engine.research.scoring import classify_intent
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.services import ServiceClient
from xynergy.platform.tracing import current_request_id

__all__ = ["TRACKING_TAG", "track_phrases"]

TRACKING_TAG = "marketing-research"
_JSON_LINES = "application/x-ndjson"


def _idempotency_key(tenant_id: str, locale: str, phrases: Sequence[str]) -> str | None:
    # Per incoming request: a repeat of this call within the request imports once,
    # while a later request (say, after the phrases were deleted) tracks them anew.
    # A retried request is deduplicated one level up, by its own Idempotency-Key.
    request_id = current_request_id()
    if request_id is None:
        return None
    raw = "\x1f".join(("marketing-research-track", request_id, tenant_id, locale, *phrases))
    return hashlib.sha256(raw.encode()).hexdigest()


async def track_phrases(
    items: Sequence[Suggestion],
    chosen: Sequence[str] | bool,
    *,
    services: ServiceClient,
    caller: AuthContext,
    locale: str,
) -> TrackingReport:
    """Track ``chosen`` phrases (True: every untracked suggestion); marks ``items`` tracked."""
    by_phrase = {item.phrase: item for item in items}
    if chosen is True:
        wanted = [item.phrase for item in items if not item.tracked]
    else:
        wanted = list(dict.fromkeys(chosen)) if not isinstance(chosen, bool) else []
    known = [phrase for phrase in wanted if phrase in by_phrase and by_phrase[phrase].tracked]
    to_send = [phrase for phrase in wanted if phrase not in known]
    report = TrackingReport(added=[], already_tracked=sorted(known), rejected=[])
    if not to_send:
        return report
    lines = []
    for phrase in to_send:
        suggestion = by_phrase.get(phrase)
        row = {
            "phrase": phrase,
            "locale": locale,
            "intent": suggestion.intent if suggestion else classify_intent(phrase),
            "tags": [TRACKING_TAG],
        }
        lines.append(json.dumps(row, separators=(",", ":")))
    imported = await call_json(
        services,
        ASO_ENGINE,
        "POST",
        "/api/keywords/bulk-import",
        caller=caller,
        scopes=("keywords:write",),
        params={"mode": "best_effort"},
        content=("\n".join(lines) + "\n").encode(),
        content_type=_JSON_LINES,
        idempotency_key=_idempotency_key(caller.tenant_id, locale, to_send),
    )
    # Rejections name the 1-based line of the JSON-lines body: line n is to_send[n-1].
    refused = {
        to_send[rejection["line"] - 1]: rejection["reason"]
        for rejection in imported.get("rejections", [])
        if 1 <= rejection.get("line", 0) <= len(to_send)
    }
    report.rejected = [
        TrackingRejection(phrase=phrase, reason=reason)
        for phrase, reason in sorted(refused.items())
    ]
    # Sent and not refused: tracked now (inserted here, or by a concurrent writer).
    report.added = sorted(phrase for phrase in to_send if phrase not in refused)
    for phrase in report.added:
        if phrase in by_phrase:
            by_phrase[phrase].tracked = True
    return report
