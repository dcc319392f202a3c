"""In-flight dedup across replicas: one provider call per request key, cluster-wide.

The second layer behind :class:`~xynergy.ai_routing.routing.singleflight.SingleFlight`
(which already folds a replica's identical requests into one flight, so each
replica asks Redis once per key). The replica that takes a short Redis lock on
the key (``SET NX PX`` with a random token, renewed while the call runs, deleted
only by its holder: compare-and-delete) calls the provider; the others wait for
its outcome:

* the holder writes the outcome (the answer, or the provider error) to a result
  key with a short TTL, publishes the key on one channel, then releases the lock;
* each replica keeps one subscription to that channel and wakes its waiters;
  a waiter then reads the result key. A waiter also looks again every half lock
  TTL without a message, so a missed message costs a little latency, and a
  crashed holder (whose lock expired, not renewed) is taken over by a waiter;
* a provider error reaches the holder's waiters as the same error (an outage is
  not multiplied by the number of replicas); a holder that failed for a reason
  of its own (its key's budget, a shutdown) leaves "abandoned" and one of its
  waiters takes the lock and calls;
* a waiter gives up after ``shared_dedup_wait_seconds`` and calls the provider
  itself (counted as a wait timeout).

cashews (the response cache) has ``set_lock``/``unlock``, and redis-py a ``Lock``;
neither is used: cashews' lock cannot be renewed, waits only by polling, and
under the platform's ``suppress=True`` an unreachable Redis looks like a lock
held elsewhere; redis-py's costs a round trip per step. Here taking the lock
and reading the last outcome is one pipelined round trip, and writing the
outcome, publishing and releasing one script: a request that leads adds two
round trips to the shared Redis pool. With Redis down, requests are shared per
process only, counted, and never fail because of it.

Keys carry the tenant (replicas share answers exactly where the response cache
does, never across tenants) and a TTL (invariant 9).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from xynergy.ai_routing.config import AiSettings
from xynergy.ai_routing.routing.metrics import AiMetrics
from xynergy.ai_routing.routing.requests import Answer
from xynergy.platform.exceptions import (
    CircuitOpen,
    UpstreamTimeout,
    UpstreamUnavailable,
    XynergyError,
)
from xynergy.platform.logging import get_logger

__all__ = ["SharedFlights"]

log = get_logger(__name__)

# Provider failures every waiter would meet too: passed on rather than retried, so
# an outage is not multiplied by the number of replicas.
_SHARED_ERRORS: dict[str, type[XynergyError]] = {
    cls.code: cls for cls in (UpstreamUnavailable, UpstreamTimeout, CircuitOpen)
}


# Outcome, then message, then release, atomically: a waiter that saw the lock
# held either reads the outcome or is subscribed when the message comes; the
# lock is deleted only if it is still ours (it may have lapsed and been taken).
_FINISH = """
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


def _settling(raw: bytes | str | None, waited_on: set[str]) -> dict[str, Any] | None:
    """The outcome that ends a wait: an answer, or the error of a call waited on.

    A holder that failed for a reason of its own (its key's budget, a shutdown)
    leaves "abandoned": its waiters take the lock in turn, and one of them calls.
    """
    if raw is None:
        return None
    outcome: dict[str, Any] = json.loads(raw)
    if "answer" in outcome:
        return outcome
    if "error" in outcome and outcome.get("holder") in waited_on:
        return outcome
    return None


class SharedFlights:
    """The Redis layer of in-flight dedup; one per running gateway."""

    def __init__(
        self,
        *,
        ai: AiSettings,
        redis: Redis,
        redis_url: str,
        key_prefix: str,
        metrics: AiMetrics,
        reconnect_backoff_seconds: float,
        socket_timeout_seconds: float,
    ) -> None:
        self._redis = redis
        self._redis_url = redis_url
        self._prefix = f"{key_prefix}ai-flight:"
        self._channel = f"{key_prefix}ai-flight:done"
        self._lock_ttl = ai.shared_dedup_lock_ttl_seconds
        self._lock_ttl_ms = max(1, int(self._lock_ttl * 1000))
        # Scripts run atomically and cost one round trip each (EVALSHA once loaded).
        self._finish = redis.register_script(_FINISH)
        self._release = redis.register_script(_RELEASE)
        self._renew_script = redis.register_script(_RENEW)
        self._wait = ai.shared_dedup_wait_seconds
        self._max_waiting = ai.singleflight_max_entries
        self._metrics = metrics
        self._backoff = reconnect_backoff_seconds
        self._socket_timeout = socket_timeout_seconds
        # One event per key waited on here: bounded by flights in flight (max_waiting).
        self._waiting: dict[str, set[asyncio.Event]] = {}
        self._parked = 0
        self._subscribed = False
        self._down_until = 0.0
        self._listener: asyncio.Task[None] | None = None
        self._renewals: set[asyncio.Task[None]] = set()  # guard: allow XG005 one per lead

    @property
    def waiting(self) -> int:
        """Request keys this process is leading or waiting on through Redis now."""
        return len(self._waiting)

    @property
    def parked(self) -> int:
        """Requests waiting for another replica's call now."""
        return self._parked

    def name(self, local_key: str, tenant_id: str) -> str:
        """The Redis name of an in-flight key: tenant-scoped, fixed length."""
        digest = hashlib.sha256(local_key.encode()).hexdigest()[:32]
        return f"{self._prefix}{tenant_id}:{digest}"

    async def start(self) -> None:
        """Subscribe to completions; returns once subscribed or once a try failed."""
        ready = asyncio.Event()
        self._listener = asyncio.create_task(self._listen_forever(ready), name="ai-flight-done")
        await ready.wait()

    async def close(self) -> None:
        """Stop listening and renewing (shutdown)."""
        for task in [self._listener, *self._renewals]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def run(self, name: str, lead: Callable[[], Awaitable[Answer]]) -> Answer | None:
        """Lead the call for ``name`` or wait for the replica that leads it.

        Returns None when ``lead`` ran here (it delivered its answer itself), the
        other replica's answer otherwise. Raises the other replica's provider error.
        """
        if not self._available():
            self._metrics.dedup_fallbacks.labels(reason="redis_unavailable").inc()
            await lead()
            return None
        if len(self._waiting) >= self._max_waiting:
            self._metrics.dedup_fallbacks.labels(reason="full").inc()
            await lead()
            return None
        woken = asyncio.Event()
        self._waiting.setdefault(name, set()).add(woken)
        try:
            return await self._lead_or_wait(name, woken, lead)
        finally:
            events = self._waiting.get(name)
            if events is not None:
                events.discard(woken)
                if not events:
                    del self._waiting[name]

    async def _lead_or_wait(
        self, name: str, woken: asyncio.Event, lead: Callable[[], Awaitable[Answer]]
    ) -> Answer | None:
        deadline = time.monotonic() + self._wait
        # Tokens of the holders this request waited on: an error outcome is passed on
        # only to the waiters of the call that failed, never to a later retry.
        waited_on: set[str] = set()
        while True:  # bounded: every turn waits, and the deadline ends the loop
            # Cleared before looking, not after: a message arriving while we look
            # still ends the wait below at once.
            woken.clear()
            token = secrets.token_hex(16)
            try:
                locked, holder, raw = await self._try_lock(name, token)
                # Read with the lock, too: a holder writes its outcome before it
                # releases, so a lock just freed comes with the answer it guarded.
                outcome = _settling(raw, waited_on)
                if locked and outcome is not None:
                    await self._release(keys=[name + ":lock"], args=[token])
            except RedisError as exc:
                self._went_down(exc)
                await lead()
                return None
            if outcome is not None:
                return self._settle(outcome)
            if locked:
                await self._lead(name, token, lead)
                return None
            if holder is not None:
                waited_on.add(holder.decode() if isinstance(holder, bytes) else str(holder))
            left = deadline - time.monotonic()
            if left <= 0:
                self._metrics.dedup_wait_timeouts.inc()
                await lead()
                return None
            self._parked += 1
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), min(left, self._lock_ttl / 2))
            finally:
                self._parked -= 1

    async def _try_lock(self, name: str, token: str) -> tuple[bool, Any, Any]:
        """(taken, the holder's token, the last outcome), in one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(name + ":lock", token, px=self._lock_ttl_ms, nx=True)
            pipe.mget(name + ":lock", name + ":result")
            taken, (holder, raw) = await pipe.execute()
        return bool(taken), holder, raw

    async def _lead(self, name: str, token: str, lead: Callable[[], Awaitable[Answer]]) -> None:
        renewals: list[asyncio.Task[None]] = []

        def start_renewing() -> None:
            renewal = asyncio.create_task(self._renew(name, token), name="ai-flight-renew")
            self._renewals.add(renewal)
            renewal.add_done_callback(self._renewals.discard)
            renewals.append(renewal)

        # Most calls end long before their lock needs renewing: a timer, not a task
        # per call (creating and cancelling one was ~2 % of a proxied call's CPU).
        timer = asyncio.get_running_loop().call_later(self._lock_ttl / 3, start_renewing)
        outcome: dict[str, Any] = {"abandoned": True}
        try:
            answer = await lead()
            outcome = {"answer": answer.to_cache_json()}
        except XynergyError as exc:
            if exc.code in _SHARED_ERRORS:
                outcome = {
                    "error": {"code": exc.code, "detail": exc.detail, "headers": exc.headers}
                }
            raise
        finally:
            timer.cancel()
            for renewal in renewals:
                renewal.cancel()
            outcome["holder"] = token
            publish = self._publish(name, token, json.dumps(outcome))
            await asyncio.shield(asyncio.create_task(publish, name="ai-flight-publish"))

    async def _renew(self, name: str, token: str) -> None:
        # A long call keeps its lock; a crashed process stops renewing, so its
        # lock lapses within one TTL and a waiter takes over.
        # Started a third of the TTL into the call: renew at once, then every third.
        while True:  # bounded: cancelled when the call ends
            try:
                kept = await self._renew_script(
                    keys=[name + ":lock"], args=[token, self._lock_ttl_ms]
                )
            except RedisError as exc:
                kept = 0
                log.warning("ai.flight_redis_error", error=repr(exc))
            if not kept:
                log.warning("ai.flight_lock_lost")
                return
            await asyncio.sleep(self._lock_ttl / 3)

    async def _publish(self, name: str, token: str, outcome: str) -> None:
        try:
            await self._finish(
                keys=[name + ":lock", name + ":result"],
                args=[token, outcome, self._lock_ttl_ms, self._channel, name],
            )
        except RedisError as exc:
            self._went_down(exc)  # waiters find the lock lapsed and lead themselves

    def _settle(self, outcome: dict[str, Any]) -> Answer:
        # Counted like a local join: once per request that shared, whatever the outcome.
        self._metrics.dedup_hits.labels(scope="remote").inc()
        self._metrics.deduplicated.inc()
        error = outcome.get("error")
        if error is not None:
            raise _SHARED_ERRORS[error["code"]](error["detail"], headers=error["headers"])
        answer = Answer.from_cache_json(outcome["answer"])
        answer.cached = False
        answer.deduplicated = True
        return answer

    def _available(self) -> bool:
        return self._subscribed and time.monotonic() >= self._down_until

    def _went_down(self, exc: BaseException) -> None:
        self._metrics.dedup_fallbacks.labels(reason="redis_error").inc()
        log.warning("ai.flight_redis_error", error=repr(exc))
        self._down_until = time.monotonic() + self._backoff

    async def _listen_forever(self, ready: asyncio.Event) -> None:
        while True:  # bounded by shutdown (cancelled); one try per backoff
            try:
                await self._listen(ready)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # No traceback: this repeats while Redis is down.
                log.warning("ai.flight_listener_reconnecting", error=repr(exc))
            self._subscribed = False
            ready.set()
            await asyncio.sleep(self._backoff)

    async def _listen(self, ready: asyncio.Event) -> None:
        # Its own connection, without a read timeout: a quiet channel is not an error.
        client = Redis.from_url(self._redis_url, socket_connect_timeout=self._socket_timeout)
        try:
            async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                await pubsub.subscribe(self._channel)
                self._subscribed = True
                ready.set()
                async for message in pubsub.listen():
                    self._wake(message.get("data"))
        finally:
            self._subscribed = False
            await client.aclose()

    def _wake(self, data: Any) -> None:
        name = data.decode() if isinstance(data, bytes) else str(data)
        for event in self._waiting.get(name, ()):
            event.set()
