"""A cache invalidation is seen by every replica within 1 s, while nginx is under load."""

from __future__ import annotations

import uuid
from http import HTTPStatus
from typing import Any

import httpx
import pytest

from tests.cluster.support import background_wrk, issue_key, time_until_each
from tests.helpers import auth

pytestmark = pytest.mark.cluster

WITHIN_SECONDS = 1.0
# The content list is cached per tenant and query (namespace content, 60 s TTL);
# creating a piece of content invalidates it.
LIST_PATH = "/aso-engine/api/content?limit=100"


def _ids(answer: httpx.Response) -> set[str]:
    assert answer.status_code == HTTPStatus.OK, answer.text
    return {item["id"] for item in answer.json()["items"]}


def test_content_written_through_one_replica_is_listed_by_every_replica_within_one_second(
    cluster: Any,
) -> None:
    _key_id, secret = issue_key(cluster, ["content:read", "content:write"], name="cache test")
    _load_id, load_secret = issue_key(cluster, ["content:read"], name="background load")
    urls = [replica.base_url for replica in cluster.replicas]
    # Each replica caches the (empty) list.
    for url in urls:
        for _ in range(2):
            assert _ids(httpx.get(url + LIST_PATH, headers=auth(secret))) == set()

    with background_wrk(cluster.proxy_url + LIST_PATH, auth(load_secret), seconds=10):
        created = httpx.post(
            cluster.proxy_url + "/aso-engine/api/content",
            json={"title": f"cluster {uuid.uuid4().hex[:8]}", "author": "cluster test"},
            headers=auth(secret),
            timeout=30,
        )
        assert created.status_code == HTTPStatus.CREATED, created.text
        new_id = created.json()["id"]

        def listed(client: httpx.Client, url: str) -> bool:
            return new_id in _ids(client.get(url + LIST_PATH, headers=auth(secret)))

        seconds = time_until_each(urls, listed, timeout=5 * WITHIN_SECONDS)

    names = {replica.base_url: replica.name for replica in cluster.replicas}
    figures = ", ".join(
        f"{names[url]} {'never' if s is None else f'{s * 1000:.0f} ms'}"
        for url, s in seconds.items()
    )
    print(f"\nnew content listed, after the write answered: {figures}")  # noqa: T201
    assert all(s is not None and s <= WITHIN_SECONDS for s in seconds.values()), seconds
