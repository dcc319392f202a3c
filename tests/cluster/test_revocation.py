"""A revoked key is refused by every replica within 1 s, while nginx is under load."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import httpx
import pytest

from tests.cluster.support import admin_headers, background_wrk, issue_key, time_until_each
from tests.helpers import auth

pytestmark = pytest.mark.cluster

WITHIN_SECONDS = 1.0
READ_PATH = "/aso-engine/api/content?limit=1"


def test_revoked_key_is_refused_by_every_replica_within_one_second(cluster: Any) -> None:
    key_id, secret = issue_key(cluster, ["content:read"], name="revoked in the test")
    _load_id, load_secret = issue_key(cluster, ["content:read"], name="background load")
    urls = [replica.base_url for replica in cluster.replicas]
    # Every replica has verified the key: it is in each one's key cache (30 s TTL).
    for url in urls:
        for _ in range(2):
            assert httpx.get(url + READ_PATH, headers=auth(secret)).status_code == HTTPStatus.OK

    def refused(client: httpx.Client, url: str) -> bool:
        answer = client.get(url + READ_PATH, headers=auth(secret))
        return answer.status_code == HTTPStatus.UNAUTHORIZED

    with background_wrk(cluster.proxy_url + READ_PATH, auth(load_secret), seconds=10):
        revoked = httpx.post(
            f"{cluster.proxy_url}/admin/keys/{key_id}/revoke",
            headers=admin_headers(cluster),
            timeout=30,
        )
        assert revoked.status_code == HTTPStatus.OK, revoked.text
        seconds = time_until_each(urls, refused, timeout=5 * WITHIN_SECONDS)

    names = {replica.base_url: replica.name for replica in cluster.replicas}
    figures = ", ".join(
        f"{names[url]} {'never' if s is None else f'{s * 1000:.0f} ms'}"
        for url, s in seconds.items()
    )
    print(f"\nrevocation seen, after the revoke answered: {figures}")  # noqa: T201
    assert all(s is not None and s <= WITHIN_SECONDS for s in seconds.values()), seconds
