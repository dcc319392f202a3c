"""How many progress streams are open, per tenant and in the process, and the caps."""

from __future__ import annotations

from xynergy.platform.exceptions import RateLimited

__all__ = ["StreamLimits", "StreamSlot", "TooManyStreams"]

_RETRY_AFTER_SECONDS = "5"


class TooManyStreams(RateLimited):
    code = "too_many_streams"
    default_detail = "Too many progress streams are open; close one or retry later."


class StreamLimits:
    """Counts open streams; a stream past a cap is refused before it starts."""

    def __init__(self, *, per_tenant: int, per_process: int) -> None:
        self.per_tenant = per_tenant
        self.per_process = per_process
        self.open = 0
        # An entry only while its tenant has a stream open: at most per_process entries.
        self._by_tenant: dict[str, int] = {}  # guard: allow XG005 bounded by per_process

    def open_for(self, tenant_id: str) -> int:
        return self._by_tenant.get(tenant_id, 0)

    def acquire(self, tenant_id: str) -> StreamSlot:
        """One stream slot of ``tenant_id``, held until its ``release()``.

        Raises:
            TooManyStreams: the tenant's or the process's cap is reached.
        """
        if self.open >= self.per_process:
            raise TooManyStreams(
                "This server has too many progress streams open; retry later.",
                headers={"Retry-After": _RETRY_AFTER_SECONDS},
            )
        if self._by_tenant.get(tenant_id, 0) >= self.per_tenant:
            raise TooManyStreams(
                f"At most {self.per_tenant} progress streams per tenant may be open at once.",
                headers={"Retry-After": _RETRY_AFTER_SECONDS},
            )
        self.open += 1
        self._by_tenant[tenant_id] = self._by_tenant.get(tenant_id, 0) + 1
        return StreamSlot(self, tenant_id)

    def _release(self, tenant_id: str) -> None:
        self.open -= 1
        left = self._by_tenant[tenant_id] - 1
        if left:
            self._by_tenant[tenant_id] = left
        else:
            del self._by_tenant[tenant_id]


class StreamSlot:
    """One open stream's place under the caps; released once, however often asked."""

    __slots__ = ("_limits", "_tenant_id")

    def __init__(self, limits: StreamLimits, tenant_id: str) -> None:
        self._limits: StreamLimits | None = limits
        self._tenant_id = tenant_id

    def release(self) -> None:
        if self._limits is not None:
            self._limits._release(self._tenant_id)
            self._limits = None
