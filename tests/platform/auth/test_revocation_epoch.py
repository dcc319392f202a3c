"""Revocation without Redis: the revocation epoch every replica polls.

Two app instances share one database and nothing else (no Redis): each has its
own verified-key cache, like two replicas. The key cache TTL is far longer than
any test, so only the epoch poll can explain a replica refusing a key it had
cached. The CLI test runs a real ``xynergy serve`` process and revokes with a
real ``xynergy keys revoke`` process, as an operator would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.helpers import auth, issue_key, running, seconds_until_status
from tests.live_server import live_server
from xynergy.platform.admin_app import create_admin_app
from xynergy.platform.config import Settings
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.exceptions import Unauthorized
from xynergy.platform.runtime import Platform
from xynergy.platform.tenancy import service
from xynergy.platform.tenancy.models import ApiKey
from xynergy.platform.tenancy.repository import KeyRepository, RevocationEpochRepository

LONG_CACHE_TTL = 300.0
POLL_SECONDS = 0.5
# Room for a busy machine on top of the poll interval; far below the cache TTL.
SLACK_SECONDS = 1.5
PROBE_INTERVAL_SECONDS = 0.02
CONCURRENT = 8


@pytest.fixture
def replica_settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    return make_settings(
        database_url=database_url,
        key_cache_ttl_seconds=LONG_CACHE_TTL,
        key_revocation_poll_seconds=POLL_SECONDS,
    )


class TestRevocationEpochAcrossReplicas:
    async def test_a_key_revoked_on_one_replica_is_refused_by_the_other(
        self, replica_settings: Settings
    ) -> None:
        replica_a, replica_b = (
            create_admin_app(replica_settings),
            create_admin_app(replica_settings),
        )
        async with running(replica_a) as client_a, running(replica_b) as client_b:
            _, victim = await issue_key(
                replica_a.state.platform, tenant="acme", scopes=["keys:admin"]
            )
            # Cached on replica B before the revocation.
            assert (
                await client_b.get("/admin/keys", headers=auth(victim.secret))
            ).status_code == 200

            revoked = await client_a.post(
                f"/admin/keys/{victim.key.id}/revoke", headers=auth(victim.secret)
            )
            assert revoked.status_code == 200, revoked.text

            await seconds_until_status(
                client_b, auth(victim.secret), 401, POLL_SECONDS + SLACK_SECONDS
            )

    async def test_a_key_rotated_without_grace_is_refused_by_the_other_replica(
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
                json={"grace_seconds": 0},
            )
            assert rotated.status_code == 201, rotated.text

            await seconds_until_status(
                client_b, auth(old.secret), 401, POLL_SECONDS + SLACK_SECONDS
            )
            new_secret = rotated.json()["secret"]
            assert (await client_b.get("/admin/keys", headers=auth(new_secret))).status_code == 200

    async def test_other_keys_keep_working_after_the_cache_is_dropped(
        self, replica_settings: Settings
    ) -> None:
        replica_a, replica_b = (
            create_admin_app(replica_settings),
            create_admin_app(replica_settings),
        )
        async with running(replica_a) as client_a, running(replica_b) as client_b:
            platform: Platform = replica_a.state.platform
            _, bystander = await issue_key(platform, tenant="acme", scopes=["keys:admin"])
            _, victim = await issue_key(platform, tenant="acme", scopes=["keys:admin"])
            for secret in (bystander.secret, victim.secret):
                assert (await client_b.get("/admin/keys", headers=auth(secret))).status_code == 200

            await client_a.post(f"/admin/keys/{victim.key.id}/revoke", headers=auth(victim.secret))
            await seconds_until_status(
                client_b, auth(victim.secret), 401, POLL_SECONDS + SLACK_SECONDS
            )

            assert (
                await client_b.get("/admin/keys", headers=auth(bystander.secret))
            ).status_code == 200


class TestRevocationEpoch:
    async def test_revoking_and_rotating_move_the_epoch_and_reading_changes_nothing(
        self, replica_settings: Settings
    ) -> None:
        app = create_admin_app(replica_settings)
        async with running(app):
            platform: Platform = app.state.platform
            tenant_id, first = await issue_key(platform, scopes=["keys:admin"])
            _, second = await issue_key(platform, scopes=["keys:admin"])
            epochs = [await _epoch(platform)]
            async with unit_of_work(platform.sessionmaker) as session:
                await service.get_key(session, tenant_id=tenant_id, key_id=first.key.id)
            epochs.append(await _epoch(platform))
            async with unit_of_work(platform.sessionmaker) as session:
                await service.revoke_key(
                    session, tenant_id=tenant_id, key_id=first.key.id, invalidate=_nothing
                )
            epochs.append(await _epoch(platform))
            async with unit_of_work(platform.sessionmaker) as session:
                # Already revoked: nothing changes, so nothing to announce.
                await service.revoke_key(
                    session, tenant_id=tenant_id, key_id=first.key.id, invalidate=_nothing
                )
            epochs.append(await _epoch(platform))
            async with unit_of_work(platform.sessionmaker) as session:
                await service.rotate_key(
                    session,
                    tenant_id=tenant_id,
                    key_id=second.key.id,
                    grace=timedelta(seconds=replica_settings.key_rotation_grace_seconds),
                    invalidate=_nothing,
                )
            epochs.append(await _epoch(platform))
        assert epochs == [0, 0, 1, 1, 2]

    async def test_concurrent_first_revocations_each_move_the_epoch(
        self, replica_settings: Settings
    ) -> None:
        # No epoch row yet: every transaction tries to create it at once (an upsert,
        # so none fails on the primary key).
        app = create_admin_app(replica_settings)
        async with running(app):
            platform: Platform = app.state.platform
            keys = [(await issue_key(platform, scopes=["keys:admin"])) for _ in range(CONCURRENT)]

            async def revoke(tenant_id: str, key_id: str) -> None:
                async with unit_of_work(platform.sessionmaker) as session:
                    await service.revoke_key(
                        session, tenant_id=tenant_id, key_id=key_id, invalidate=_nothing
                    )

            await asyncio.gather(*(revoke(tenant, issued.key.id) for tenant, issued in keys))
            assert await _epoch(platform) == CONCURRENT

    async def test_a_revocation_rolled_back_leaves_the_epoch_alone(
        self, replica_settings: Settings
    ) -> None:
        app = create_admin_app(replica_settings)
        async with running(app):
            platform: Platform = app.state.platform
            tenant_id, issued = await issue_key(platform, scopes=["keys:admin"])

            async def revoke_then_fail() -> None:
                async with unit_of_work(platform.sessionmaker) as session:
                    await service.revoke_key(
                        session, tenant_id=tenant_id, key_id=issued.key.id, invalidate=_nothing
                    )
                    raise RuntimeError("abandoned")

            with pytest.raises(RuntimeError, match="abandoned"):
                await revoke_then_fail()
            assert await _epoch(platform) == 0
            assert not await platform.key_verifier.check_revocation_epoch()


class TestLookupRacingARevocation:
    async def test_a_lookup_that_read_the_row_before_the_revocation_is_not_cached(
        self,
        make_settings: Callable[..., Settings],
        database_url: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        # The poll is driven by hand here: the lookup reads the key, the revocation
        # commits and the epoch is seen, and only then does the lookup finish.
        settings = make_settings(
            database_url=database_url,
            key_cache_ttl_seconds=LONG_CACHE_TTL,
            key_revocation_poll_seconds=60.0,
        )
        app = create_admin_app(settings)
        async with running(app):
            platform: Platform = app.state.platform
            verifier = platform.key_verifier
            tenant_id, issued = await issue_key(platform, scopes=["keys:admin"])
            row_read, finish = asyncio.Event(), asyncio.Event()
            by_hash = KeyRepository.by_hash

            async def slow_by_hash(self: KeyRepository, key_hash: str) -> ApiKey | None:
                found = await by_hash(self, key_hash)
                row_read.set()
                await finish.wait()
                return found

            monkeypatch.setattr(KeyRepository, "by_hash", slow_by_hash)
            in_flight = asyncio.create_task(verifier.verify(issued.secret))
            await row_read.wait()
            monkeypatch.setattr(KeyRepository, "by_hash", by_hash)
            async with unit_of_work(platform.sessionmaker) as session:
                await service.revoke_key(
                    session, tenant_id=tenant_id, key_id=issued.key.id, invalidate=_nothing
                )
            assert await verifier.check_revocation_epoch()
            finish.set()
            await in_flight  # began before the revocation: served, but not remembered

            with pytest.raises(Unauthorized, match="revoked"):
                await verifier.verify(issued.secret)


class TestRevocationFromTheCli:
    def test_keys_revoke_reaches_a_running_server_without_redis_within_the_poll(
        self, tmp_path: Path
    ) -> None:
        env = {
            # A cache that would otherwise serve the key for five minutes.
            "XYNERGY_KEY_CACHE_TTL_SECONDS": str(LONG_CACHE_TTL),
            "XYNERGY_KEY_REVOCATION_POLL_SECONDS": str(POLL_SECONDS),
        }
        with live_server(env, data_dir=tmp_path / "server") as server:
            assert "XYNERGY_REDIS_URL" not in server.env
            created = server.issue_key_record(tenant="acme", scopes=("keys:admin",))
            headers = auth(created.secret)
            with httpx.Client(base_url=server.base_url, timeout=5.0) as client:
                assert client.get("/admin/keys", headers=headers).status_code == 200

                server.cli("keys", "revoke", created.key.id, "--tenant", created.key.tenant_id)
                revoked_at = time.monotonic()
                bound = POLL_SECONDS + SLACK_SECONDS
                while (status := client.get("/admin/keys", headers=headers).status_code) != 401:
                    elapsed = time.monotonic() - revoked_at
                    assert status == 200, status
                    assert elapsed < bound, f"still served {elapsed:.2f}s after the CLI revoked it"
                    time.sleep(PROBE_INTERVAL_SECONDS)


async def _nothing(_key_hash: str) -> None:
    return None


async def _epoch(platform: Platform) -> int:
    async with unit_of_work(platform.sessionmaker) as session:
        return await RevocationEpochRepository(session).current()
