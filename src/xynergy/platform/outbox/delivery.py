"""One webhook POST: destination check, signature, breaker, and the outcome's class.

Outcomes:

* ``delivered``: a 2xx answer.
* ``retry``: anything else that may get better: 5xx, 408, 429, timeouts and
  connection errors (these count against the host's breaker), and other 4xx or
  3xx answers (the receiver is misconfigured and may be fixed; not a breaker
  failure, since the host answered fine). Bounded by the give-up time.
* ``circuit_open``: the destination's breaker is open; nothing was sent.
* ``refused``: the destination is not allowed (a non-HTTP URL, a local name, or
  an address that is not public by :mod:`xynergy.platform.net_policy`);
  retried like ``retry``, since the source's URL may be corrected, but never sent.
* ``failed``: nothing can ever deliver it (the source or its webhook was removed).

Server-side request forgery: unless private addresses are allowed, the host is
resolved (the platform's resolver, or the one given), every address must be
public by the platform's network policy (special-purpose ranges, and IPv6 forms
embedding a private IPv4, are refused), and the request is then sent to the
vetted address itself (``Host`` header and TLS server name keep the original
host, so certificates are still checked against it). Connecting to what was
checked leaves no window for DNS rebinding between the check and the
connection. Redirects are never followed.

One breaker per tenant and destination (scheme, host, port), under the
``webhook`` upstream: one tenant's dead receiver never delays another tenant's
deliveries, even to the same host, nor its own to another port. Those breakers
are bounded in number and expire when idle (platform settings), and their names
never reach a metric label.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

import aiohttp
from yarl import URL

from xynergy.platform.breaker import Breakers, UpstreamFailure
from xynergy.platform.config import Settings
from xynergy.platform.db.base import utcnow
from xynergy.platform.exceptions import CircuitOpen
from xynergy.platform.http import OutboundHTTP
from xynergy.platform.net_policy import Resolver, resolve_public
from xynergy.platform.outbox.repository import ClaimedMessage
from xynergy.platform.outbox.resolvers import Destination
from xynergy.platform.outbox.signing import webhook_headers

__all__ = ["BREAKER", "UPSTREAM", "DeliveryResult", "Outcome", "breaker_destination", "deliver"]

UPSTREAM = "webhooks"  # one pooled outbound session for every webhook
BREAKER = "webhook"
Outcome = Literal["delivered", "retry", "circuit_open", "refused", "failed"]

# Only the start of an error answer is kept (for last_error); the rest is never read.
_BODY_SNIPPET_BYTES = 256
_BREAKER_STATUSES = frozenset({408, 429})
_SCHEMES = frozenset({"http", "https"})


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What one attempt came to; ``error`` is kept as the row's last error."""

    outcome: Outcome
    error: str | None = None
    status: int | None = None


def breaker_destination(tenant_id: str, url: URL) -> str:
    """The breaker key of a tenant's webhook: tenant, scheme, host and port."""
    host = (url.raw_host or "").lower()
    return f"{tenant_id}:{url.scheme}://[{host}]:{url.port}"


async def deliver(
    message: ClaimedMessage,
    destination: Destination | None,
    *,
    settings: Settings,
    http: OutboundHTTP,
    breakers: Breakers,
    resolver: Resolver | None = None,
) -> DeliveryResult:
    """POST ``message`` to ``destination`` once and classify the outcome.

    ``destination`` None: the source no longer exists. ``resolver`` replaces the
    system DNS resolver (tests, or a deployment's own).
    """
    if destination is None or not destination.url:
        return DeliveryResult("failed", "the source no longer has a webhook")
    url = URL(destination.url)
    if url.scheme not in _SCHEMES or not url.raw_host:
        return DeliveryResult("refused", "the webhook URL is not an http(s) URL")
    host = url.raw_host.lower()
    target = url
    extra: dict[str, str] = {}
    server_hostname: str | None = None
    if not settings.outbox_allow_private_addresses:
        try:
            # A resolver that never answers must not hold the dispatcher: the
            # webhook's own time budget covers the lookup too (TimeoutError is an
            # OSError: retried below).
            async with asyncio.timeout(settings.outbox_webhook_timeout_seconds):
                address = await resolve_public(host, url.port, resolver=resolver)
        except ValueError as exc:  # DestinationRefused, or a resolver's non-address
            return DeliveryResult("refused", str(exc))
        except OSError as exc:
            # Not a breaker failure: the receiving host was never reached.
            return DeliveryResult("retry", f"cannot resolve the host: {exc}")
        target = url.with_host(address)
        extra["Host"] = url.host_port_subcomponent or host
        server_hostname = host if url.scheme == "https" else None

    headers = webhook_headers(
        message_id=message.id,
        event=message.event,
        payload=message.payload,
        secrets=destination.signing_secrets(utcnow()),
    )
    headers.update(extra)
    session = http.session(UPSTREAM)
    timeout = aiohttp.ClientTimeout(total=settings.outbox_webhook_timeout_seconds)
    try:
        breaker_key = breaker_destination(message.tenant_id, url)
        async with breakers.guard(BREAKER, breaker_key):
            try:
                async with session.post(
                    target,
                    data=message.payload.encode(),
                    headers=headers,
                    timeout=timeout,
                    allow_redirects=False,
                    server_hostname=server_hostname,
                ) as response:
                    status = response.status
                    if 200 <= status < 300:
                        return DeliveryResult("delivered", status=status)
                    snippet = await response.content.read(_BODY_SNIPPET_BYTES)
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                raise UpstreamFailure(DeliveryResult("retry", error)) from exc
            text = snippet.decode("utf-8", "replace").strip()
            result = DeliveryResult("retry", f"HTTP {status}: {text}".rstrip(": "), status)
            if status >= 500 or status in _BREAKER_STATUSES:
                raise UpstreamFailure(result)
            return result
    except CircuitOpen:
        return DeliveryResult("circuit_open", f"the breaker for {url.origin()} is open")
    except UpstreamFailure as failure:
        if isinstance(failure.outcome, DeliveryResult):
            return failure.outcome
        raise
