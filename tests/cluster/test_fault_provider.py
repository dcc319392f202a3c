"""Fault: an AI provider down; breakers open on every replica, the fallback serves, it recovers.

A cluster of its own (module scope, about 15 s to start) whose replicas have a
catalogue of two fake OpenAI-protocol providers in the test process: model
``main`` on ``primary`` with the fallback ``spare`` on ``backup``, the response
cache off (every request reaches a provider) and the breaker settings lowered
(``THRESHOLD`` failures open it for ``RESET_SECONDS``). Then:

1. healthy: each replica's requests are served by ``primary``;
2. ``primary`` answers 500: requests to replica 1 fail over to ``backup`` (200s)
   until ``THRESHOLD`` failures open the breaker; requests to replicas 2 and 3
   then never reach ``primary`` (its call count does not move) because the
   breaker state is shared in Redis, and are served by ``backup``;
3. ``primary`` healthy again: after the cool-down one trial call closes the
   breaker and every replica is served by ``primary`` again.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import httpx
import pytest

from tests.ai_routing.gateway import http_model
from tests.cluster.conftest import CLUSTER_RATE_LIMITS
from tests.cluster.support import issue_key, tool
from tests.cluster.traffic import SwitchableOpenAI, fake_providers, metric_sum
from tests.helpers import auth

pytestmark = pytest.mark.cluster

THRESHOLD = 3
RESET_SECONDS = 4.0
REQUESTS_PER_REPLICA = 5
RECOVERY_BOUND_SECONDS = RESET_SECONDS + 10.0
AI_SCOPES = ("ai:generate", "metrics:read")


@pytest.fixture(scope="module")
def ai_cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Any, SwitchableOpenAI, SwitchableOpenAI]]:
    """Three replicas behind nginx whose model ``main`` is on a fake that can go down."""
    work = tmp_path_factory.mktemp("ai-cluster")
    with fake_providers(2) as (primary, backup):
        catalogue = work / "catalogue.json"
        catalogue.write_text(
            json.dumps(
                {
                    "providers": [
                        {"name": "primary", "kind": "openai", "base_url": primary.base_url},
                        {"name": "backup", "kind": "openai", "base_url": backup.base_url},
                    ],
                    "models": [
                        http_model("main", "primary", fallbacks=["spare"]),
                        http_model("spare", "backup"),
                    ],
                }
            )
        )
        extra = {
            "XYNERGY_AI_CATALOGUE": str(catalogue),
            "XYNERGY_AI_CACHE_ENABLED": "false",
            "XYNERGY_BREAKER_FAILURE_THRESHOLD": str(THRESHOLD),
            "XYNERGY_BREAKER_RESET_SECONDS": str(RESET_SECONDS),
            "XYNERGY_RATE_LIMITS": json.dumps(CLUSTER_RATE_LIMITS),
            "XYNERGY_ACCESS_LOG": "false",
        }
        with tool("cluster").running_cluster(
            replicas=3,
            extra_env=extra,
            work_dir=work / "cluster",
            database_name=_database_name(),
        ) as running:
            yield running, primary, backup


def _database_name() -> str:
    from tests.cluster.conftest import DATABASE_NAME

    return DATABASE_NAME + "_ai"


def _ask(base_url: str, secret: str) -> int:
    answer = httpx.post(
        base_url + "/ai-routing-engine/v1/chat/completions",
        json={
            "model": "main",
            "messages": [{"role": "user", "content": f"hello {uuid.uuid4().hex}"}],
            "max_tokens": 16,
        },
        headers=auth(secret),
        timeout=30,
    )
    return answer.status_code


def _breaker_open(replica: Any, secret: str) -> float | None:
    page = httpx.get(replica.base_url + "/metrics", headers=auth(secret), timeout=30)
    assert page.status_code == HTTPStatus.OK, page.text
    return metric_sum(page.text, "xynergy_circuit_breaker_state")


def test_a_provider_outage_opens_every_replicas_breaker_and_the_fallback_serves(
    ai_cluster: tuple[Any, SwitchableOpenAI, SwitchableOpenAI],
) -> None:
    cluster, primary, backup = ai_cluster
    _key_id, secret = issue_key(cluster, AI_SCOPES, name="provider fault test")
    first, *rest = cluster.replicas

    healthy = [_ask(replica.base_url, secret) for replica in cluster.replicas]
    healthy_calls = (primary.calls, backup.calls)

    primary.down = True
    down_at = time.monotonic()
    tripping = [_ask(first.base_url, secret) for _ in range(THRESHOLD + 2)]
    primary_calls_open = primary.calls
    elsewhere = [
        _ask(replica.base_url, secret) for replica in rest for _ in range(REQUESTS_PER_REPLICA)
    ]
    reached_primary_while_open = primary.calls - primary_calls_open
    backup_served = backup.calls - healthy_calls[1]
    states_open = {replica.name: _breaker_open(replica, secret) for replica in cluster.replicas}

    primary.down = False
    recovered_after: float | None = None
    recovery_answers: list[int] = []
    deadline = time.monotonic() + RECOVERY_BOUND_SECONDS
    while time.monotonic() < deadline:
        before = primary.answered
        recovery_answers.append(_ask(cluster.proxy_url, secret))
        if primary.answered > before:
            recovered_after = time.monotonic() - down_at
            break
        time.sleep(0.25)
    served_before = primary.answered
    after = [_ask(replica.base_url, secret) for replica in cluster.replicas]
    served_by_primary_after = primary.answered - served_before

    print(  # noqa: T201
        f"\nhealthy: {healthy} (primary {healthy_calls[0]} calls, backup {healthy_calls[1]})\n"
        f"primary down: {cluster.replicas[0].name} answered {tripping}; primary saw "
        f"{primary_calls_open - healthy_calls[0]} calls ({primary.refused} refused) before "
        f"its breaker opened (threshold {THRESHOLD})\n"
        f"  other replicas answered {elsewhere}; calls reaching primary meanwhile "
        f"{reached_primary_while_open}; backup served {backup_served}\n"
        f"  breaker state gauges (sum, 1 = open): {states_open}\n"
        f"primary back: served again {recovered_after} s after the outage began "
        f"(reset {RESET_SECONDS} s), answers {recovery_answers}; then each replica: {after}, "
        f"{served_by_primary_after} by primary"
    )
    assert healthy == [HTTPStatus.OK] * 3
    assert healthy_calls == (3, 0)
    # Failover kept every answer a 200, on the backup.
    assert tripping == [HTTPStatus.OK] * (THRESHOLD + 2)
    assert primary_calls_open - healthy_calls[0] == THRESHOLD
    assert elsewhere == [HTTPStatus.OK] * len(elsewhere)
    # The other replicas knew the breaker was open without trying primary themselves.
    assert reached_primary_while_open == 0
    assert backup_served == THRESHOLD + 2 + len(elsewhere)
    # Recovery: not before the cool-down, soon after it, on every replica.
    assert recovered_after is not None
    assert recovered_after >= RESET_SECONDS * 0.9
    assert set(recovery_answers) == {HTTPStatus.OK}
    assert after == [HTTPStatus.OK] * 3
    assert served_by_primary_after == 3
