"""One webhook POST: destination check, signature, breaker, and the outcome's class.

Outcomes:

* ``delivered``: a 2xx answer.
* ``retry``: anything else that may get better: 5xx, 408, 429, timeouts and
  connection errors (these count against the host's breaker), and other 4xx or
  3xx answers (the receiver is misconfigured and may be fixed; not a breaker
  failure, since the host answered fine). Bounded by the give-up time.
* ``circuit_open``: the host's breaker is open; nothing was sent.
* ``refused``: the destination is not allowed (a non-HTTP URL, or an address on
  a loopback/private/link-local/reserved network); retried like ``retry``, since
  the form's URL may be corrected, but never sent.
* ``failed``: nothing can ever deliver it (the form's webhook was removed).

Server-side request forgery: unless private addresses are allowed, the host is
resolved with the loop's ``getaddrinfo``, every address must be global, and the
request is then sent to the vetted address itself (``Host`` header and TLS
server name keep the original host, so certificates are still checked against
it). Connecting to what was checked leaves no window for DNS rebinding between
the check and the connection. Redirects are never followed.

One breaker per receiving host (``webhook:<host>``): one receiver's outage never
stops deliveries to another. The breaker names (and the breaker-state gauge's
labels) are therefore as many as the distinct webhook hosts tenants configure.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Literal

import aiohttp
from yarl import URL

from xynergy.intelligence_gateway.config import IntakeSettings
from xynergy.intelligence_gateway.outbox.repository import ClaimedMessage
from xynergy.intelligence_gateway.outbox.signing import webhook_headers
from xynergy.platform.breaker import UpstreamFailure
from xynergy.platform.exceptions import CircuitOpen
from xynergy.platform.runtime import Platform

__all__ = ["UPSTREAM", "DeliveryResult", "Outcome", "deliver", "is_public_address"]

UPSTREAM = "intake-webhooks"
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


def is_public_address(address: str) -> bool:
    """Whether ``address`` is globally routable unicast (not loopback, private, ...)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def _vetted_address(host: str, port: int | None) -> str:
    """One resolved address of ``host``; ValueError unless every address is public."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise ValueError("the host has no address")
    private = [address for address in addresses if not is_public_address(address)]
    if private:
        raise ValueError(f"the host resolves to a non-public address ({private[0]})")
    return addresses[0]


async def deliver(
    message: ClaimedMessage, *, platform: Platform, intake: IntakeSettings
) -> DeliveryResult:
    """POST ``message`` to its form's webhook once and classify the outcome."""
    if not message.webhook_url:
        return DeliveryResult("failed", "the form no longer has a webhook")
    url = URL(message.webhook_url)
    if url.scheme not in _SCHEMES or not url.raw_host:
        return DeliveryResult("refused", "the webhook URL is not an http(s) URL")
    host = url.raw_host.lower()
    target = url
    extra: dict[str, str] = {}
    server_hostname: str | None = None
    if not intake.webhook_allow_private_addresses:
        try:
            address = await _vetted_address(host, url.port)
        except ValueError as exc:
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
        secret=message.webhook_secret,
    )
    headers.update(extra)
    session = platform.http.session(UPSTREAM)
    timeout = aiohttp.ClientTimeout(total=intake.webhook_timeout_seconds)
    try:
        async with platform.breakers.guard(f"webhook:{host}"):
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
        return DeliveryResult("circuit_open", f"the breaker for {host} is open")
    except UpstreamFailure as failure:
        if isinstance(failure.outcome, DeliveryResult):
            return failure.outcome
        raise
