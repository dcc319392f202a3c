"""Streams through nginx: SSE passed on as written, WebSocket upgraded, both until the run ends.

(nginx passes a proxied answer on as it arrives even with buffering on, unless the
client is slow; this checks the streams work end to end, the WebSocket upgrade
headers above all: without them the upgrade is refused.)
"""

from __future__ import annotations

import asyncio
import json
import time
from http import HTTPStatus
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.cluster.support import issue_key
from tests.helpers import auth
from tests.system_runtime.durability_support import RUN_SCOPES, chain_definition

pytestmark = pytest.mark.cluster

HOLD_SECONDS = 2.0
DEFINITION = "cluster-stream"
# The first event must arrive while the slow step still runs, not with the stream's end.
PROMPT_SECONDS = 1.0


def _start(cluster: Any, secret: str) -> str:
    answer = httpx.post(
        cluster.proxy_url + "/system-runtime/api/workflows/start",
        json={"definition": DEFINITION},
        headers=auth(secret),
        timeout=30,
    )
    assert answer.status_code == HTTPStatus.ACCEPTED, answer.text
    return str(answer.json()["id"])


async def _sse_arrivals(url: str, secret: str) -> list[tuple[float, str]]:
    started = time.monotonic()
    arrivals: list[tuple[float, str]] = []
    async with (
        httpx.AsyncClient(timeout=30) as client,
        client.stream("GET", url, headers=auth(secret)) as response,
    ):
        assert response.status_code == HTTPStatus.OK, await response.aread()
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                event = json.loads(line.removeprefix("data: "))
                arrivals.append((time.monotonic() - started, str(event["type"])))
    return arrivals


async def _ws_arrivals(url: str, secret: str) -> tuple[list[tuple[float, str]], int | None]:
    started = time.monotonic()
    arrivals: list[tuple[float, str]] = []
    async with connect(url, additional_headers=auth(secret), open_timeout=10) as ws:
        async for message in ws:
            arrivals.append((time.monotonic() - started, str(json.loads(message)["type"])))
        await ws.wait_closed()
        return arrivals, ws.close_code


def test_sse_and_websocket_progress_stream_through_nginx(cluster: Any) -> None:
    _key_id, secret = issue_key(cluster, RUN_SCOPES, name="stream test")
    stored = httpx.post(
        cluster.proxy_url + "/system-runtime/api/workflow-definitions",
        json=chain_definition(DEFINITION, ["first", "slow", "last"], {"slow": HOLD_SECONDS}),
        headers=auth(secret),
        timeout=30,
    )
    assert stored.status_code == HTTPStatus.CREATED, stored.text
    sse_run, ws_run = _start(cluster, secret), _start(cluster, secret)
    ws_base = cluster.proxy_url.replace("http://", "ws://")

    async def both() -> tuple[list[tuple[float, str]], tuple[list[tuple[float, str]], int | None]]:
        return await asyncio.gather(
            _sse_arrivals(
                f"{cluster.proxy_url}/system-runtime/api/workflows/{sse_run}/events", secret
            ),
            _ws_arrivals(f"{ws_base}/system-runtime/ws/workflows/{ws_run}", secret),
        )

    sse, (ws, close_code) = asyncio.run(asyncio.wait_for(both(), timeout=60))
    for name, arrivals in (("SSE", sse), ("WebSocket", ws)):
        shown = ", ".join(f"{kind} at {at:.2f}s" for at, kind in arrivals)
        print(f"\n{name} via nginx: {shown}")  # noqa: T201
    print(f"WebSocket close code {close_code}")  # noqa: T201
    for arrivals in (sse, ws):
        assert len(arrivals) >= 2, arrivals
        # The first events came while the slow step was still running.
        assert arrivals[0][0] < PROMPT_SECONDS, arrivals
        assert arrivals[-1][0] >= HOLD_SECONDS * 0.9, arrivals
    assert close_code == 1000
