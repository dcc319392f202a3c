"""In-flight dedup across replicas, deployed: 300 identical AI requests, one provider call.

A cluster of its own (``own_services.dedicated_cluster``, about 15 s to start)
whose model is on a fake OpenAI-protocol provider in the test process, with the
response cache off, so a request that did not share a call in flight would make
a provider call of its own. ``CONCURRENT`` identical chat completions go through
nginx at once (round robin: about a third per replica). The provider holds its
answer until every request has arrived (each replica's
``xynergy_ai_dedup_hits{scope="local"}`` says how many joined a flight there), so
all are in flight together; then:

* the provider was called once: one replica led, the other two waited for its
  outcome through Redis (``scope="remote"``: one per replica that did not lead);
* every answer is the same 200, and exactly one is not marked ``deduplicated``;
* nginx's access log shows the requests spread over all three replicas.

With ``XYNERGY_AI_SHARED_DEDUP_ENABLED=false`` each replica makes its own call
(3 calls, no remote hits): the test fails, as it should.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import httpx
import pytest

from tests.ai_routing.fakes import FakeOpenAI, expected_answer
from tests.ai_routing.gateway import http_model
from tests.cluster.own_services import GENEROUS_LIMITS, dedicated_cluster, tenant_key
from tests.cluster.support import access_log_lines, issue_key, replica_names
from tests.cluster.traffic import BackgroundLoop, metric_sum
from tests.helpers import auth

pytestmark = pytest.mark.cluster

MODEL = "shared-model"
PROMPT = "one question asked by the whole cluster at once"
MAX_TOKENS = 16
CONCURRENT = 300
# nginx allows 256 connections per client address: the burst comes from several
# loopback addresses, as several clients would.
CLIENT_ADDRESSES = ("127.0.1.1", "127.0.1.2", "127.0.1.3", "127.0.1.4")
# Bounds on waits, not timing assertions: generous for a busy 2-core machine.
ARRIVAL_TIMEOUT_SECONDS = 30.0
CALL_TIMEOUT_SECONDS = 90.0
POLL_SECONDS = 0.1


class HeldProvider:
    """A fake OpenAI-protocol provider (on a loop thread of its own) that holds every
    answer until ``release``: requests stay in flight as long as the test needs."""

    def __init__(self, loop: BackgroundLoop) -> None:
        self.fake = FakeOpenAI()
        self.fake.gate = asyncio.Event()
        self._loop = loop

    @property
    def calls(self) -> int:
        """Requests the provider received."""
        return self.fake.calls

    def release(self) -> None:
        """Let the held answers go (thread-safe: the gate lives on the provider's loop)."""
        gate = self.fake.gate
        assert gate is not None
        self._loop.loop.call_soon_threadsafe(gate.set)


@contextmanager
def held_provider() -> Iterator[HeldProvider]:
    """A ``HeldProvider`` on a loopback port until the block exits."""
    loop = BackgroundLoop()
    provider = HeldProvider(loop)
    try:
        loop.run(provider.fake.__aenter__())
        try:
            yield provider
        finally:
            loop.run(provider.fake.__aexit__(None, None, None))
    finally:
        loop.close()


@pytest.fixture(scope="module")
def dedup_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, HeldProvider]]:
    """Three replicas behind nginx whose model ``MODEL`` is on a held fake provider."""
    work = tmp_path_factory.mktemp("dedup")
    with held_provider() as provider:
        catalogue = work / "held-catalogue.json"
        catalogue.write_text(
            json.dumps(
                {
                    "providers": [
                        {"name": "held", "kind": "openai", "base_url": provider.fake.base_url}
                    ],
                    "models": [http_model(MODEL, "held")],
                }
            )
        )
        extra = {
            "XYNERGY_AI_CATALOGUE": str(catalogue),
            # Off: a request that shares no flight must reach the provider, not the cache.
            "XYNERGY_AI_CACHE_ENABLED": "false",
            # The test polls every replica's /metrics while the requests arrive.
            "XYNERGY_RATE_LIMITS": json.dumps(GENEROUS_LIMITS | {"metrics": "1000000/hour"}),
        }
        with dedicated_cluster(
            work, database_name="xynergy_cluster_dedup", extra_env=extra
        ) as running:
            yield running, provider


@dataclass(frozen=True)
class Reply:
    """One request's outcome as its client saw it."""

    status: int
    content: str | None
    deduplicated: bool | None
    seconds: float


@dataclass(frozen=True)
class DedupCounts:
    """One replica's dedup counters (from its /metrics)."""

    upstream_calls: float
    local: float
    remote: float
    fallbacks: float
    wait_timeouts: float


def dedup_counts(client: httpx.Client, replica: Any, secret: str) -> DedupCounts:
    page = client.get(replica.base_url + "/metrics", headers=auth(secret))
    assert page.status_code == HTTPStatus.OK, page.text
    text = page.text
    return DedupCounts(
        upstream_calls=metric_sum(text, "xynergy_ai_upstream_calls_total") or 0.0,
        local=metric_sum(text, "xynergy_ai_dedup_hits_total", scope="local") or 0.0,
        remote=metric_sum(text, "xynergy_ai_dedup_hits_total", scope="remote") or 0.0,
        fallbacks=metric_sum(text, "xynergy_ai_dedup_fallbacks_total") or 0.0,
        wait_timeouts=metric_sum(text, "xynergy_ai_dedup_wait_timeouts_total") or 0.0,
    )


async def _ask(client: httpx.AsyncClient, secret: str, request_id: str) -> Reply:
    started = time.monotonic()
    try:
        answer = await client.post(
            "/ai-routing-engine/v1/chat/completions",
            json={
                "model": MODEL,
                "messages": [{"role": "user", "content": PROMPT}],
                "max_tokens": MAX_TOKENS,
            },
            headers=auth(secret) | {"X-Request-ID": request_id},
        )
    except httpx.HTTPError as error:  # counted as status 0, shown in the failure
        return Reply(0, repr(error), None, time.monotonic() - started)
    seconds = time.monotonic() - started
    if answer.status_code != HTTPStatus.OK:
        return Reply(answer.status_code, answer.text, None, seconds)
    body = answer.json()
    content = body["choices"][0]["message"]["content"]
    return Reply(answer.status_code, content, body["xynergy"]["deduplicated"], seconds)


def _all_arrived(cluster: Any, provider: HeldProvider, metrics_secret: str) -> float | None:
    """Seconds until the provider was called and every request joined a flight on its
    replica (all but each replica's leader count as local hits); None at the bound."""
    started = time.monotonic()
    joined_everywhere = CONCURRENT - len(cluster.replicas)
    with httpx.Client(timeout=CALL_TIMEOUT_SECONDS) as client:
        while time.monotonic() - started < ARRIVAL_TIMEOUT_SECONDS:
            local = sum(dedup_counts(client, r, metrics_secret).local for r in cluster.replicas)
            if provider.calls >= 1 and local >= joined_everywhere:
                return time.monotonic() - started
            time.sleep(POLL_SECONDS)
    return None


async def _burst(
    cluster: Any, provider: HeldProvider, secret: str, metrics_secret: str, request_id: str
) -> tuple[list[Reply], float | None]:
    """``CONCURRENT`` identical requests through nginx; the provider is released once all
    arrived (or at the bound). The replies, and the seconds until all arrived."""
    per_client = -(-CONCURRENT // len(CLIENT_ADDRESSES))
    clients = [
        httpx.AsyncClient(
            base_url=cluster.proxy_url,
            timeout=CALL_TIMEOUT_SECONDS,
            transport=httpx.AsyncHTTPTransport(
                local_address=address, limits=httpx.Limits(max_connections=per_client)
            ),
        )
        for address in CLIENT_ADDRESSES
    ]
    try:
        tasks = [
            asyncio.create_task(_ask(clients[i % len(clients)], secret, request_id))
            for i in range(CONCURRENT)
        ]
        arrived: float | None = None
        try:
            arrived = await asyncio.to_thread(_all_arrived, cluster, provider, metrics_secret)
        finally:
            provider.release()  # at the bound too: the replies then show what went wrong
            replies = await asyncio.gather(*tasks)
        return replies, arrived
    finally:
        for client in clients:
            await client.aclose()


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def test_identical_requests_on_three_replicas_make_one_provider_call(
    dedup_cluster: tuple[Any, HeldProvider],
) -> None:
    cluster, provider = dedup_cluster
    _tenant_id, _key_id, secret = tenant_key(cluster, "dedup-across-replicas")
    _metrics_key_id, metrics_secret = issue_key(cluster, ("metrics:read",), name="dedup metrics")
    request_id = f"cluster-dedup-{uuid.uuid4().hex}"

    calls_before = provider.calls
    started = time.monotonic()
    replies, arrived = asyncio.run(_burst(cluster, provider, secret, metrics_secret, request_id))
    burst_seconds = time.monotonic() - started
    calls = provider.calls - calls_before

    with httpx.Client(timeout=CALL_TIMEOUT_SECONDS) as client:
        counts = {r.name: dedup_counts(client, r, metrics_secret) for r in cluster.replicas}
    names = replica_names(cluster)
    served_by = Counter(
        names.get(line["upstream"], line["upstream"])
        for line in access_log_lines(cluster, request_id)
    )
    statuses = Counter(reply.status for reply in replies)
    contents = Counter(reply.content for reply in replies)
    leaders = sum(1 for reply in replies if reply.deduplicated is False)
    latencies_ms = [reply.seconds * 1000 for reply in replies]
    local = sum(c.local for c in counts.values())
    remote = sum(c.remote for c in counts.values())

    print(  # noqa: T201
        f"\n{CONCURRENT} identical requests via nginx in {burst_seconds:.1f} s "
        f"(all in flight after {_seconds(arrived)}); provider calls {calls}; statuses {dict(statuses)}; "
        f"{len(contents)} distinct answer(s), {leaders} not deduplicated\n"
        f"dedup hits: local {local:g}, remote {remote:g}; latency p50 "
        f"{statistics.median(latencies_ms):.0f} ms, p99 {_percentile(latencies_ms, 0.99):.0f} ms"
    )
    for name, replica_counts in sorted(counts.items()):
        print(  # noqa: T201
            f"  {name}: {served_by[name]} requests, {replica_counts.upstream_calls:g} provider "
            f"call(s); dedup hits local {replica_counts.local:g}, remote "
            f"{replica_counts.remote:g}, fallbacks {replica_counts.fallbacks:g}, "
            f"wait timeouts {replica_counts.wait_timeouts:g}"
        )

    assert statuses == {HTTPStatus.OK: CONCURRENT}, replies[:3]
    assert contents == {expected_answer(PROMPT, MAX_TOKENS): CONCURRENT}
    # Spread over every replica by nginx, and all in flight together.
    assert sum(served_by.values()) == CONCURRENT, served_by
    assert set(served_by) == {r.name for r in cluster.replicas}, served_by
    assert arrived is not None, counts
    # One call for the whole cluster: led by one replica, waited for by the others.
    assert calls == 1
    assert leaders == 1
    assert sorted(c.upstream_calls for c in counts.values()) == [0, 0, 1], counts
    assert remote == len(cluster.replicas) - 1
    assert local == CONCURRENT - len(cluster.replicas)
    assert all(c.fallbacks == 0 and c.wait_timeouts == 0 for c in counts.values()), counts
