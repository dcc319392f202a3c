"""The platform's transactional outbox and signed webhook delivery.

Services enqueue messages inside their own transactions (:func:`enqueue`) and
register, once at start-up, a resolver per source kind that turns a source id
into a URL and signing secrets at delivery time (``platform.outbox.register``).
One :class:`OutboxDispatcher` per process, opened and closed with the platform,
delivers them with retries, backoff, breakers and the platform's network policy.
"""

from xynergy.platform.outbox.delivery import BREAKER, DeliveryResult, breaker_destination
from xynergy.platform.outbox.dispatcher import OutboxDispatcher, backoff_seconds
from xynergy.platform.outbox.enqueue import enqueue, render_payload
from xynergy.platform.outbox.models import OutboxMessage
from xynergy.platform.outbox.repository import ClaimedMessage, OutboxRepository
from xynergy.platform.outbox.resolvers import Destination, DestinationResolver, OutboxResolvers

__all__ = [
    "BREAKER",
    "ClaimedMessage",
    "DeliveryResult",
    "Destination",
    "DestinationResolver",
    "OutboxDispatcher",
    "OutboxMessage",
    "OutboxRepository",
    "OutboxResolvers",
    "backoff_seconds",
    "breaker_destination",
    "enqueue",
    "render_payload",
]
