"""Destinations of outbox messages: resolvers registered per source kind.

A service registers one resolver per kind of source it enqueues for (the intake:
``intake-form``; alerts: ``alert-channel``). At delivery time the dispatcher asks
it, for a claimed batch, where each source sends and with which secrets, so the
current URL and a rotation's grace period apply to messages already queued.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["Destination", "DestinationResolver", "OutboxResolvers"]


@dataclass(frozen=True, slots=True)
class Destination:
    """Where one source's messages go and what signs them; ``url`` None: nowhere now."""

    url: str | None
    # Secrets stay out of repr: a logged or printed destination must not leak them.
    secret: str | None = field(default=None, repr=False)
    # A rotated-out secret and the end of its grace period (see signing_secrets).
    previous_secret: str | None = field(default=None, repr=False)
    previous_secret_expires_at: datetime | None = None

    def signing_secrets(self, now: datetime) -> tuple[str, ...]:
        """The secrets that sign a delivery sent at ``now``: the current one, then
        the previous one while its grace period lasts; none without a secret."""
        if not self.secret:
            return ()
        expires = self.previous_secret_expires_at
        if self.previous_secret and expires is not None and now < expires:
            return (self.secret, self.previous_secret)
        return (self.secret,)


class DestinationResolver(Protocol):
    """Looks up the destinations of ``source_ids`` (one bounded claim's worth).

    A source missing from the answer has no destination any more (deleted): its
    messages are marked failed.
    """

    async def __call__(
        self, session: AsyncSession, source_ids: Collection[str]
    ) -> Mapping[str, Destination]: ...


class OutboxResolvers:
    """The resolvers of this process, by source kind (registered at start-up)."""

    def __init__(self) -> None:
        # One per kind a service registers, named in code: bounded by the code.
        self._by_kind: dict[str, DestinationResolver] = {}  # guard: allow XG005 kinds from code

    def register(self, kind: str, resolver: DestinationResolver) -> None:
        """Resolve messages of ``kind`` with ``resolver`` (registering again replaces it)."""
        self._by_kind[kind] = resolver

    def get(self, kind: str) -> DestinationResolver | None:
        """The resolver of ``kind``, if one is registered here."""
        return self._by_kind.get(kind)

    @property
    def kinds(self) -> Mapping[str, DestinationResolver]:
        """Every registered kind; the dispatcher claims only these."""
        return MappingProxyType(self._by_kind)
