"""The intake's side of the platform outbox: its payload and its destination resolver.

Delivery itself (dispatcher, signing, retries, network policy) is the platform's
(:mod:`xynergy.platform.outbox`); the intake enqueues ``submission.created``
messages with source kind ``intake-form`` and resolves a form id into the form's
webhook URL and secrets at delivery time, so a rotation's grace period applies.
"""
