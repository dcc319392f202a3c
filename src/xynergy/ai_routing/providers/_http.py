"""What the HTTP providers share: one POST, bounded reads, and error classification.

Every transport failure, error status and unreadable body becomes a
:class:`ProviderError` here, so the OpenAI and Anthropic adapters only translate
wire formats. Details are short and never carry the API key, because they end
up in logs and in answers to clients.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from xynergy.ai_routing.catalogue import ProviderSpec
from xynergy.ai_routing.providers.base import ProviderError
from xynergy.ai_routing.providers.sse import SSEEvent, iter_sse
from xynergy.platform.logging import get_logger

__all__ = ["MALFORMED", "HTTPProvider", "JSONUpstream", "as_token_count", "request_id_header"]

# What indexing into an upstream's JSON raises when a field is missing or mistyped.
MALFORMED = (KeyError, IndexError, TypeError, ValueError, AttributeError)

_DETAIL_MAX_CHARS = 200
_ERROR_BODY_MAX_BYTES = 16 * 1024
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_KEY_REFUSED = (401, 403)

log = get_logger(__name__)


def request_id_header(request_id: str) -> dict[str, str]:
    """``X-Request-ID`` when the id is a plain token (a header must never carry a newline)."""
    return {"X-Request-ID": request_id} if _REQUEST_ID.fullmatch(request_id) else {}


def as_token_count(value: object) -> int:
    """A usage count; ValueError if the upstream sent something else."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ValueError(f"usage {value!r} is not a token count")


class JSONUpstream:
    """One provider's calls: POST JSON, read the answer within bounds, classify failures."""

    def __init__(
        self,
        *,
        name: str,
        session: aiohttp.ClientSession,
        timeout: aiohttp.ClientTimeout,
        max_response_bytes: int,
        secret: str | None,
        describe_key: Callable[[], str] | None = None,
    ) -> None:
        if max_response_bytes < 1:
            raise ValueError("max_response_bytes must be positive")
        self.name = name
        self._session = session
        self._timeout = timeout
        self._max_response_bytes = max_response_bytes
        self._secret = secret
        self._describe_key = describe_key

    @asynccontextmanager
    async def post(
        self, url: str, payload: Mapping[str, Any], headers: Mapping[str, str]
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """A 2xx response, released on exit; failures inside the block are classified too.

        Raises:
            ProviderError: error status, connection failure, timeout (also while the
                body is being read inside the ``async with`` block).
        """
        body = json.dumps(payload, ensure_ascii=False).encode()
        answering = False
        try:
            async with self._session.post(
                url,
                data=body,
                headers={**headers, "Content-Type": "application/json"},
                timeout=self._timeout,
                # A redirect could carry the key to another host; upstreams never need one.
                allow_redirects=False,
            ) as response:
                if not 200 <= response.status < 300:
                    raise await self._status_error(response)
                answering = True
                yield response
        except TimeoutError as exc:
            # Before ClientError: aiohttp's read timeouts are both.
            raise ProviderError.unreachable(f"{self.name}: timed out", timeout=True) from exc
        except aiohttp.ClientError as exc:
            what = "answer cut midway" if answering else "connection failed"
            raise ProviderError.unreachable(f"{self.name}: {what} ({type(exc).__name__})") from exc

    async def read_json(self, response: aiohttp.ClientResponse) -> dict[str, Any]:
        """The body as a JSON object, read no further than ``max_response_bytes``."""
        raw = await self._read_bounded(response, self._max_response_bytes)
        if raw is None:
            raise self.invalid(f"answer larger than {self._max_response_bytes} bytes")
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise self.invalid("answer is not JSON") from exc
        if not isinstance(data, dict):
            raise self.invalid("answer is not a JSON object")
        return data

    async def events(self, response: aiohttp.ClientResponse) -> AsyncIterator[SSEEvent]:
        """The SSE events of a streaming answer, each bounded by ``max_response_bytes``."""
        try:
            async for event in iter_sse(
                response.content.iter_any(), max_event_bytes=self._max_response_bytes
            ):
                yield event
        except ProviderError as exc:
            raise self.invalid(exc.detail) from exc

    def invalid(self, why: str) -> ProviderError:
        """A body that is not the protocol (counts against the provider)."""
        return ProviderError.unreachable(f"{self.name}: {self.clean(why)}")

    def malformed(self, what: str, exc: Exception) -> ProviderError:
        """A JSON body without the fields the protocol promises."""
        reason = f"missing {exc}" if isinstance(exc, KeyError) else str(exc) or type(exc).__name__
        return self.invalid(f"malformed {what}: {reason}")

    def clean(self, text: str) -> str:
        """``text`` shortened, on one line, and without the API key."""
        # Redact before shortening, so a cut can never leave part of the key behind.
        if self._secret:
            text = text.replace(self._secret, "[redacted]")
        text = _CONTROL.sub(" ", text).strip()
        if len(text) > _DETAIL_MAX_CHARS:
            text = text[: _DETAIL_MAX_CHARS - 3] + "..."
        return text

    async def _status_error(self, response: aiohttp.ClientResponse) -> ProviderError:
        if response.status in _KEY_REFUSED and self._describe_key is not None:
            # Named by the variable or file it came from; the upstream's own message
            # is left out, since providers echo parts of a refused key in it.
            source = self._describe_key()
            log.warning("ai.provider_key_rejected", provider=self.name, key_source=source)
            return ProviderError.from_status(
                response.status,
                f"provider {self.name} rejected its key ({source}): HTTP {response.status}",
            )
        message = response.reason or ""
        raw = await self._read_bounded(
            response, min(_ERROR_BODY_MAX_BYTES, self._max_response_bytes)
        )
        if raw:
            message = _error_message(raw) or message
        detail = f"{self.name}: HTTP {response.status}"
        if message:
            detail += f": {self.clean(message)}"
        return ProviderError.from_status(response.status, detail)

    async def _read_bounded(self, response: aiohttp.ClientResponse, limit: int) -> bytes | None:
        """The whole body, or None as soon as it is known to exceed ``limit``."""
        if response.content_length is not None and response.content_length > limit:
            return None
        body = bytearray()
        async for chunk in response.content.iter_any():
            body += chunk
            if len(body) > limit:
                return None
        return bytes(body)


def _error_message(raw: bytes) -> str | None:
    """The message of an OpenAI- or Anthropic-shaped error body, else its text."""
    try:
        data = json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    if isinstance(error, str):
        return error
    return None


class HTTPProvider:
    """What both HTTP adapters are built from: the endpoint URL, the key, the upstream."""

    kind: str
    endpoint_path: str  # appended to the catalogue's base_url

    def __init__(
        self,
        spec: ProviderSpec,
        *,
        session: aiohttp.ClientSession,
        api_key: str | None,
        timeout: aiohttp.ClientTimeout,
        max_response_bytes: int,
        describe_key: Callable[[], str] | None = None,
    ) -> None:
        if not spec.base_url:
            raise ValueError(f"provider {spec.name!r} has no base_url")
        self.name = spec.name
        self._url = spec.base_url.rstrip("/") + self.endpoint_path
        self._api_key = api_key
        self._upstream = JSONUpstream(
            name=spec.name,
            session=session,
            timeout=timeout,
            max_response_bytes=max_response_bytes,
            secret=api_key,
            describe_key=describe_key,
        )
