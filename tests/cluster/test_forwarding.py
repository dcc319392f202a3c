"""nginx's X-Forwarded-For is the client address the replicas limit by; clients cannot forge it.

The client addresses are distinct loopback addresses (127.0.0.2, 127.0.0.3, ...):
nginx itself connects from 127.0.0.1, the only trusted proxy, so a replica that
ignored the header would see every client as 127.0.0.1 and count them together.
The public rate class is limited per client address (PUBLIC_LIMIT an hour).
"""

from __future__ import annotations

import uuid
from collections import Counter
from http import HTTPStatus
from typing import Any

import httpx
import pytest

from tests.cluster.conftest import PUBLIC_LIMIT
from tests.cluster.support import access_log_lines

pytestmark = pytest.mark.cluster

# A public route (rate class public): a form token for a form that does not exist.
PUBLIC_PATH = "/intelligence-gateway/api/forms/no-such-form/token"


def _client(source: str, base_url: str) -> httpx.Client:
    return httpx.Client(
        base_url=base_url, transport=httpx.HTTPTransport(local_address=source), timeout=30
    )


def _statuses(
    client: httpx.Client, count: int, headers: dict[str, str] | None = None
) -> Counter[int]:
    return Counter(client.get(PUBLIC_PATH, headers=headers).status_code for _ in range(count))


def test_the_forwarded_client_address_is_limited_and_cannot_be_forged(cluster: Any) -> None:
    proxy = cluster.proxy_url
    with _client("127.0.0.2", proxy) as first:
        used = _statuses(first, PUBLIC_LIMIT)
        # A forged X-Forwarded-For per request: nginx replaces it, the bucket stays.
        forged = Counter(
            first.get(
                PUBLIC_PATH, headers={"X-Forwarded-For": f"198.51.100.{index % 250 + 1}"}
            ).status_code
            for index in range(10)
        )
    with _client("127.0.0.3", proxy) as second:
        other_client = _statuses(second, 3)
    # Straight to a replica from an address that is not a trusted proxy: its header
    # is not believed either, so a forged one does not open fresh buckets.
    replica = cluster.replicas[0].base_url
    with _client("127.0.0.4", replica) as direct:
        direct_forged = Counter(
            direct.get(
                PUBLIC_PATH, headers={"X-Forwarded-For": f"203.0.113.{index % 250 + 1}"}
            ).status_code
            for index in range(PUBLIC_LIMIT + 5)
        )
    print(  # noqa: T201
        f"\npublic limit {PUBLIC_LIMIT}/hour per client: 127.0.0.2 via nginx {dict(used)}, "
        f"then with forged X-Forwarded-For {dict(forged)}; 127.0.0.3 via nginx {dict(other_client)}; "
        f"127.0.0.4 direct with forged X-Forwarded-For {dict(direct_forged)}"
    )
    assert HTTPStatus.TOO_MANY_REQUESTS not in used, used
    assert forged == {HTTPStatus.TOO_MANY_REQUESTS: 10}
    assert HTTPStatus.TOO_MANY_REQUESTS not in other_client, other_client
    assert direct_forged[HTTPStatus.TOO_MANY_REQUESTS] == 5, direct_forged


def test_request_ids_pass_through_and_oversized_bodies_stop_at_nginx(cluster: Any) -> None:
    request_id = f"cluster-id-{uuid.uuid4().hex}"
    answer = httpx.get(cluster.proxy_url + "/healthz", headers={"X-Request-ID": request_id})
    assert answer.headers["X-Request-ID"] == request_id
    assert [line["status"] for line in access_log_lines(cluster, request_id)] == [200]

    too_big = int(cluster.env.get("XYNERGY_MAX_BODY_BYTES", 1_048_576)) + 1
    big_id = f"cluster-big-{uuid.uuid4().hex}"
    refused = httpx.post(
        cluster.proxy_url + "/aso-engine/api/content",
        content=b"x" * too_big,
        headers={"X-Request-ID": big_id, "Content-Type": "application/json"},
        timeout=30,
    )
    lines = access_log_lines(cluster, big_id)
    print(f"\n{too_big}-byte body: {refused.status_code} from {lines[0]['upstream'] or 'nginx'}")  # noqa: T201
    assert refused.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert lines[0]["upstream"] == ""  # refused before any replica saw it
    # In the platform's error shape, with the request's id.
    assert refused.json()["error"] == "payload_too_large"
    assert refused.json()["request_id"] == big_id == refused.headers["X-Request-ID"]


def test_a_malformed_request_id_is_replaced_at_the_proxy(cluster: Any) -> None:
    malformed = 'bad"id' + "x" * 10
    answer = httpx.get(cluster.proxy_url + "/healthz", headers={"X-Request-ID": malformed})
    replaced = answer.headers["X-Request-ID"]
    assert replaced != malformed
    # nginx's own id reached the replica (which answered with it) and its log line.
    assert [line["status"] for line in access_log_lines(cluster, replaced)] == [200]
