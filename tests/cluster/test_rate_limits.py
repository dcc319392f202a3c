"""A rate limit admits exactly its limit across the 3 replicas, under load from wrk."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from http import HTTPStatus
from typing import Any

import httpx
import pytest

from tests.cluster.conftest import ADMIN_LIMIT
from tests.cluster.support import (
    access_log_lines,
    admin_headers,
    issue_key,
    replica_names,
    run_wrk,
)

pytestmark = pytest.mark.cluster

LOAD_SECONDS = 4
CONNECTIONS = 24


def test_admin_limit_admits_exactly_the_limit_across_replicas(cluster: Any) -> None:
    # A fresh key: its own bucket of the admin class, lowered to ADMIN_LIMIT an hour.
    _key_id, secret = issue_key(cluster, ["admin"], name="rate limit test")
    request_id = f"cluster-rate-{uuid.uuid4().hex}"
    result = run_wrk(
        cluster.proxy_url + "/admin/keys?limit=1",
        admin_headers(cluster, secret) | {"X-Request-ID": request_id},
        seconds=LOAD_SECONDS,
        connections=CONNECTIONS,
    )
    per_replica: dict[str, Counter[int]] = defaultdict(Counter)
    names = replica_names(cluster)
    for line in access_log_lines(cluster, request_id):
        per_replica[names.get(line["upstream"], line["upstream"])][line["status"]] += 1
    print(f"\nrate limit {ADMIN_LIMIT}/hour, wrk -c{CONNECTIONS} via nginx: {result.describe()}")  # noqa: T201
    for name, statuses in sorted(per_replica.items()):
        print(f"  {name}: {statuses[200]} admitted, {statuses[429]} refused")  # noqa: T201

    assert set(result.statuses) <= {HTTPStatus.OK, HTTPStatus.TOO_MANY_REQUESTS}, result.statuses
    assert result.statuses[HTTPStatus.OK] == ADMIN_LIMIT
    assert result.statuses[HTTPStatus.TOO_MANY_REQUESTS] > ADMIN_LIMIT  # the load went past it
    # Every replica admitted a share: the count is shared, not per process.
    assert len(per_replica) == len(cluster.replicas)
    assert all(statuses[200] > 0 for statuses in per_replica.values()), per_replica
    # Still refused on every replica directly, after the load.
    for replica in cluster.replicas:
        answer = httpx.get(
            replica.base_url + "/admin/keys?limit=1", headers=admin_headers(cluster, secret)
        )
        assert answer.status_code == HTTPStatus.TOO_MANY_REQUESTS, (replica.name, answer.text)
        assert int(answer.headers["Retry-After"]) > 0
