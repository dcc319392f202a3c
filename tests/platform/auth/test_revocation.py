"""Rotation, grace expiry and revocation, end to end, across replicas.

Two app instances share the database and Redis but nothing in memory: each has
its own verified-key cache, like two replicas. The key cache TTL and the
revocation-epoch poll are set far longer than the 1 s bound so only the Redis
broadcast can explain a replica dropping a key in time (the epoch poll, which
works without Redis, is tested in test_revocation_epoch.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from fastapi import FastAPI

from tests.helpers import auth, client_for, issue_key, running, seconds_until_status
from xynergy.platform.admin_app import create_admin_app
from xynergy.platform.config import Settings

LONG_CACHE_TTL = 300.0
SLOW_EPOCH_POLL = 60.0
PROPAGATION_BOUND_SECONDS = 1.0


@pytest.fixture
def replica_settings(
    make_settings: Callable[..., Settings], database_url: str, redis_url: str, redis_prefix: str
) -> Settings:
    return make_settings(
        database_url=database_url,
        redis_url=redis_url,
        redis_key_prefix=redis_prefix,
        key_cache_ttl_seconds=LONG_CACHE_TTL,
        key_revocation_poll_seconds=SLOW_EPOCH_POLL,
    )


class TestRevocationAcrossReplicas:
    async def test_revocation_on_one_replica_is_seen_by_the_other_within_a_second(
        self, replica_settings: Settings
    ) -> None:
        replica_a: FastAPI = create_admin_app(replica_settings)
        replica_b: FastAPI = create_admin_app(replica_settings)
        async with running(replica_a) as client_a, running(replica_b) as client_b:
            _, admin = await issue_key(
                replica_a.state.platform, tenant="platform", scopes=["admin"]
            )
            _, victim = await issue_key(
                replica_a.state.platform, tenant="acme", scopes=["keys:admin"]
            )
            # Warm replica B's cache with the victim key.
            assert (
                await client_b.get("/admin/keys", headers=auth(victim.secret))
            ).status_code == 200

            revoke = await client_a.post(
                f"/admin/keys/{victim.key.id}/revoke",
                headers={**auth(admin.secret), "X-Xynergy-Tenant": victim.key.tenant_id},
            )
            assert revoke.status_code == 200, revoke.text

            elapsed = await seconds_until_status(
                client_b, auth(victim.secret), 401, PROPAGATION_BOUND_SECONDS
            )
            assert elapsed < PROPAGATION_BOUND_SECONDS

    async def test_without_the_broadcast_or_the_epoch_poll_the_other_replica_would_serve_it(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        # The control: no Redis, long TTL, a poll slower than the test -> replica B
        # keeps its cached key. This is what the broadcast above (and the epoch
        # poll without Redis) fixes, and why the TTL alone is not enough.
        settings = make_settings(
            database_url=database_url,
            key_cache_ttl_seconds=LONG_CACHE_TTL,
            key_revocation_poll_seconds=SLOW_EPOCH_POLL,
        )
        replica_a, replica_b = create_admin_app(settings), create_admin_app(settings)
        async with running(replica_a), running(replica_b) as client_b:
            _, victim = await issue_key(
                replica_a.state.platform, tenant="acme", scopes=["keys:admin"]
            )
            assert (
                await client_b.get("/admin/keys", headers=auth(victim.secret))
            ).status_code == 200
            async with client_for(replica_a) as client_a:
                revoked = await client_a.post(
                    f"/admin/keys/{victim.key.id}/revoke", headers=auth(victim.secret)
                )
                assert revoked.status_code == 200
                assert (
                    await client_a.get("/admin/keys", headers=auth(victim.secret))
                ).status_code == 401
            assert (
                await client_b.get("/admin/keys", headers=auth(victim.secret))
            ).status_code == 200


class TestRotationAcrossReplicas:
    async def test_old_key_works_during_grace_and_stops_after_it_everywhere(
        self, replica_settings: Settings
    ) -> None:
        replica_a, replica_b = (
            create_admin_app(replica_settings),
            create_admin_app(replica_settings),
        )
        async with running(replica_a) as client_a, running(replica_b) as client_b:
            _, old = await issue_key(replica_a.state.platform, tenant="acme", scopes=["keys:admin"])
            assert (await client_b.get("/admin/keys", headers=auth(old.secret))).status_code == 200

            rotated = await client_a.post(
                f"/admin/keys/{old.key.id}/rotate",
                headers=auth(old.secret),
                json={"grace_seconds": 2},
            )
            assert rotated.status_code == 201, rotated.text
            new_secret = rotated.json()["secret"]
            assert rotated.json()["key"]["rotated_from"] == old.key.id

            for client in (client_a, client_b):
                assert (
                    await client.get("/admin/keys", headers=auth(old.secret))
                ).status_code == 200
                assert (
                    await client.get("/admin/keys", headers=auth(new_secret))
                ).status_code == 200

            # After the grace ends, the old key fails on both replicas (B learned the
            # grace end through the broadcast, not by re-reading on a TTL).
            await asyncio.sleep(2.1)
            for client in (client_a, client_b):
                assert (
                    await client.get("/admin/keys", headers=auth(old.secret))
                ).status_code == 401
                assert (
                    await client.get("/admin/keys", headers=auth(new_secret))
                ).status_code == 200
