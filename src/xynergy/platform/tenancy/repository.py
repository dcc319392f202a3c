"""All SQL for tenants and API keys."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.platform.db.base import utcnow
from xynergy.platform.db.upsert import dialect_insert
from xynergy.platform.pagination import PageParams, keyset_page
from xynergy.platform.tenancy.models import ApiKey, KeyRevocationEpoch, Tenant

__all__ = ["KeyRepository", "RevocationEpochRepository", "TenantRepository"]

_ADMIN_KEY_SCAN_LIMIT = 1000
# The epoch table holds this one row.
_EPOCH_ROW_ID = 1


class TenantRepository:
    """Queries over ``tenants``."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, tenant_id: str) -> Tenant | None:
        return await self.session.get(Tenant, tenant_id)

    async def get_by_name(self, name: str) -> Tenant | None:
        return await self.session.scalar(select(Tenant).where(Tenant.name == name))

    async def add(self, tenant: Tenant) -> Tenant:
        self.session.add(tenant)
        await self.session.flush()
        return tenant

    async def page(self, params: PageParams) -> Sequence[Tenant]:
        query = keyset_page(
            select(Tenant), created_column=Tenant.created_at, id_column=Tenant.id, params=params
        )
        return (await self.session.scalars(query)).all()


class KeyRepository:
    """Queries over ``api_keys``."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_hash(self, key_hash: str) -> ApiKey | None:
        return await self.session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash))

    async def get_for_tenant(self, key_id: str, tenant_id: str) -> ApiKey | None:
        return await self.session.scalar(
            select(ApiKey).where(ApiKey.id == key_id, ApiKey.tenant_id == tenant_id)
        )

    async def add(self, key: ApiKey) -> ApiKey:
        self.session.add(key)
        await self.session.flush()
        return key

    async def page_for_tenant(self, tenant_id: str, params: PageParams) -> Sequence[ApiKey]:
        query = keyset_page(
            select(ApiKey).where(ApiKey.tenant_id == tenant_id),
            created_column=ApiKey.created_at,
            id_column=ApiKey.id,
            params=params,
        )
        return (await self.session.scalars(query)).all()

    async def tenant_has_live_admin_key(self, tenant_id: str, admin_scope: str) -> bool:
        """Whether ``tenant_id`` holds an unrevoked key with ``admin_scope``."""
        # Scopes are a JSON list whose containment operators differ per database;
        # an operator tenant holds a handful of keys, so a bounded read is enough.
        scopes = await self.session.scalars(
            select(ApiKey.scopes)
            .where(ApiKey.tenant_id == tenant_id, ApiKey.revoked_at.is_(None))
            .limit(_ADMIN_KEY_SCAN_LIMIT)
        )
        return any(admin_scope in key_scopes for key_scopes in scopes)

    async def record_last_used(self, used_at_by_id: Mapping[str, datetime]) -> None:
        """Persist last-used times in one batch, never moving a time backwards."""
        if not used_at_by_id:
            return
        table = cast(Table, ApiKey.__table__)
        statement = (
            update(table)
            .where(
                table.c.id == bindparam("key_id"),
                table.c.last_used_at.is_(None) | (table.c.last_used_at < bindparam("used_at")),
            )
            .values(last_used_at=bindparam("used_at"))
        )
        await self.session.execute(
            statement,
            [{"key_id": key_id, "used_at": used_at} for key_id, used_at in used_at_by_id.items()],
        )


class RevocationEpochRepository:
    """The one-row counter replicas poll to learn that a cached key may have ended."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def current(self) -> int:
        """The epoch now; 0 before the first revocation."""
        epoch = await self.session.scalar(
            select(KeyRevocationEpoch.epoch).where(KeyRevocationEpoch.id == _EPOCH_ROW_ID)
        )
        return int(epoch or 0)

    async def bump(self) -> None:
        """Move the epoch on, in the caller's transaction (so it commits with the change)."""
        table = cast(Table, KeyRevocationEpoch.__table__)
        insert = dialect_insert(self.session, table)
        now = utcnow()
        # An upsert: concurrent first revocations on PostgreSQL cannot both insert.
        statement = insert.values(id=_EPOCH_ROW_ID, epoch=1, changed_at=now).on_conflict_do_update(
            index_elements=[table.c.id],
            set_={"epoch": table.c.epoch + 1, "changed_at": now},
        )
        await self.session.execute(statement)
