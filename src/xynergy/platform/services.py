"""The inter-service client: one code path for in-process and networked calls.

A service calls another by slug. If ``service_urls`` names a base URL for the
slug, the call goes over the network through the shared aiohttp session;
otherwise (all-in-one mode) it goes through ``httpx.ASGITransport`` into the
mounted app, with no network hop. Either way the call carries the request id
and a short-lived internal token, never the caller's key.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import aiohttp
import httpx
from starlette.types import ASGIApp

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.internal_tokens import INTERNAL_TOKEN_HEADER, InternalTokens
from xynergy.platform.breaker import Breakers, UpstreamFailure
from xynergy.platform.config import Settings
from xynergy.platform.exceptions import UpstreamTimeout, UpstreamUnavailable
from xynergy.platform.http import OutboundHTTP
from xynergy.platform.service_streams import ServiceStream, asgi_stream, network_stream
from xynergy.platform.tracing import REQUEST_ID_HEADER, current_request_id

__all__ = ["ServiceClient", "ServiceResponse", "ServiceStream"]

_READ_CHUNK_BYTES = 65_536
_FIRST_SERVER_ERROR = 500


@dataclass(frozen=True, slots=True)
class _Call:
    method: str
    path: str
    headers: dict[str, str]
    json: Any
    params: Mapping[str, str] | None
    content: bytes | None = None


@dataclass(frozen=True, slots=True)
class ServiceResponse:
    """A response from another service."""

    status: int
    headers: Mapping[str, str]
    content: bytes

    def json(self) -> Any:
        return jsonlib.loads(self.content)

    def retry_after_headers(self) -> dict[str, str]:
        """``{"Retry-After": …}`` when the answer carried one (in any letter case), else
        empty: a caller refusing in turn passes the other service's advice on."""
        for name, value in self.headers.items():
            if name.lower() == "retry-after":
                return {"Retry-After": value}
        return {}


class ServiceClient:
    """Calls other services by slug with a minted internal token."""

    def __init__(
        self, settings: Settings, http: OutboundHTTP, tokens: InternalTokens, breakers: Breakers
    ) -> None:
        self._settings = settings
        self._http = http
        self._tokens = tokens
        self._breakers = breakers
        self._in_process: httpx.AsyncClient | None = None
        self._in_process_app: ASGIApp | None = None
        self._mounts: dict[str, str] = {}

    def attach_in_process(self, app: ASGIApp, mounts: Mapping[str, str]) -> None:
        """Route calls for slugs without a configured URL into ``app`` (all-in-one).

        ``mounts`` maps each slug to the path prefix it is mounted under in ``app``.
        """
        self._mounts = dict(mounts)
        self._in_process_app = app
        self._in_process = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url=self._settings.internal_base_url,
            timeout=self._settings.http_total_timeout_seconds,
        )

    async def close(self) -> None:
        """Close the in-process client (network sessions belong to OutboundHTTP)."""
        if self._in_process is not None:
            await self._in_process.aclose()

    @property
    def known_services(self) -> tuple[str, ...]:
        """Every slug this client can call (mounted in process or given a URL), sorted."""
        return tuple(sorted(self._mounts.keys() | self._settings.service_urls.keys()))

    @property
    def closed(self) -> bool:
        """Whether the in-process client is closed (or was never opened)."""
        return self._in_process is None or self._in_process.is_closed

    async def request(
        self,
        service: str,
        method: str,
        path: str,
        *,
        caller: AuthContext,
        scopes: Iterable[str],
        json: Any = None,
        params: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        content: bytes | None = None,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ServiceResponse:
        """Call ``method path`` on ``service`` on behalf of ``caller`` with ``scopes``.

        The body is ``json``, or raw ``content`` of ``content_type`` (e.g. the
        JSON lines of a bulk import); ``headers`` are extra headers (the token and
        request id always win over them).
        """
        if content is not None and (json is not None or not content_type):
            raise ValueError("raw content needs a content_type and no json body")
        headers = self._signed_headers(service, caller, scopes, headers)
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        if content_type:
            headers["Content-Type"] = content_type
        call = _Call(method, path, headers, json, params, content)
        base_url = self._settings.service_urls.get(service)
        try:
            async with self._breakers.guard("service:" + service):
                if base_url is not None:
                    response = await self._over_network(base_url, call)
                else:
                    response = await self._in_process_call(service, call)
                if response.status >= _FIRST_SERVER_ERROR:
                    # A 5xx counts against the breaker; a 4xx is the caller's problem.
                    raise UpstreamFailure(response)
        except UpstreamFailure as failure:
            return cast(ServiceResponse, failure.outcome)
        return response

    def _signed_headers(
        self,
        service: str,
        caller: AuthContext,
        scopes: Iterable[str],
        extra: Mapping[str, str] | None,
    ) -> dict[str, str]:
        """``extra`` plus the call's internal token and request id, which win over it."""
        request_id = current_request_id()
        headers = {
            **(extra or {}),
            INTERNAL_TOKEN_HEADER: self._tokens.mint(
                caller, audience=service, scopes=frozenset(scopes), request_id=request_id
            ),
        }
        if request_id:
            headers[REQUEST_ID_HEADER] = request_id
        return headers

    @asynccontextmanager
    async def stream(
        self,
        service: str,
        method: str,
        path: str,
        *,
        caller: AuthContext,
        scopes: Iterable[str],
        json: Any,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[ServiceStream]:
        """Like :meth:`request`, but the body is read as it arrives (an SSE answer).

        The breaker counts a 5xx status; the body's chunks are the caller's to read
        within the block. No retries and no idempotency key: a stream is one call.
        """
        headers = {
            **self._signed_headers(service, caller, scopes, headers),
            "Content-Type": "application/json",
        }
        body = jsonlib.dumps(json, separators=(",", ":")).encode()
        base_url = self._settings.service_urls.get(service)
        async with self._opened_stream(service, base_url, method, path, headers, body) as opened:
            try:
                async with self._breakers.guard("service:" + service):
                    if opened.status >= _FIRST_SERVER_ERROR:
                        raise UpstreamFailure(opened)
            except UpstreamFailure:
                pass
            yield opened

    @asynccontextmanager
    async def _opened_stream(
        self,
        service: str,
        base_url: str | None,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
    ) -> AsyncIterator[ServiceStream]:
        read_timeout = self._settings.http_read_timeout_seconds
        if base_url is None:
            prefix = self._mounts.get(service)
            app = self._in_process_app
            if app is None or prefix is None:
                raise UpstreamUnavailable(f"Service {service!r} is neither mounted nor configured.")
            async with asgi_stream(
                app,
                base_url=self._settings.internal_base_url,
                method=method,
                path=prefix + path,
                headers=headers,
                body=body,
                read_timeout=read_timeout,
            ) as opened:
                yield opened
            return
        async with network_stream(
            self._http.session("service:" + base_url),
            url=base_url.rstrip("/") + path,
            method=method,
            headers=headers,
            body=body,
            connect_timeout=self._settings.http_connect_timeout_seconds,
            read_timeout=read_timeout,
        ) as opened:
            yield opened

    async def _over_network(self, base_url: str, call: _Call) -> ServiceResponse:
        session = self._http.session("service:" + base_url)
        url = base_url.rstrip("/") + call.path
        try:
            async with session.request(
                call.method,
                url,
                headers=call.headers,
                json=call.json,
                data=call.content,
                params=call.params,
            ) as response:
                content = await self._read_bounded(response)
                return ServiceResponse(response.status, dict(response.headers), content)
        except TimeoutError as exc:
            raise UpstreamTimeout() from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable() from exc

    async def _read_bounded(self, response: aiohttp.ClientResponse) -> bytes:
        limit = self._settings.http_max_response_bytes
        if response.content_length is not None and response.content_length > limit:
            raise UpstreamUnavailable("A service answered with more data than allowed.")
        body = bytearray()
        async for chunk in response.content.iter_chunked(_READ_CHUNK_BYTES):
            body += chunk
            if len(body) > limit:
                raise UpstreamUnavailable("A service answered with more data than allowed.")
        return bytes(body)

    async def _in_process_call(self, service: str, call: _Call) -> ServiceResponse:
        prefix = self._mounts.get(service)
        if self._in_process is None or prefix is None:
            raise UpstreamUnavailable(f"Service {service!r} is neither mounted nor configured.")
        try:
            response = await self._in_process.request(
                call.method,
                prefix + call.path,
                headers=call.headers,
                json=call.json,
                content=call.content,
                params=call.params,
            )
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise UpstreamTimeout() from exc
        return ServiceResponse(response.status_code, dict(response.headers), response.content)
