"""structlog JSON logging with the request id on every line and secrets redacted."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import time
from collections.abc import MutableMapping
from typing import Any

import structlog

from xynergy.platform.tracing import current_request_id

__all__ = [
    "AccessLog",
    "configure_logging",
    "configure_safe_defaults",
    "flush_stdout_forever",
    "get_logger",
]

# A safety net: keys and webhook signing secrets are never passed to a logger on
# purpose, but if one slips into a message or an exception text it must not reach
# the log file. Each keeps its prefix, so the line still says what was hidden.
_SECRET_PATTERN = re.compile(r"(xyn|whsec)_(?:(?:live|test)_)?[A-Za-z0-9_-]{8,}")
_MAX_QUOTED_STRINGS = 10_000
_REDACTED_FIELDS = frozenset({"api_key", "key", "authorization", "secret", "token", "password"})


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return _SECRET_PATTERN.sub(r"\1_[REDACTED]", value)
    return value


def _redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for field, value in list(event_dict.items()):
        if field.lower() in _REDACTED_FIELDS:
            event_dict[field] = "[REDACTED]"
        else:
            event_dict[field] = _redact(value)
    return event_dict


def _add_request_id(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    request_id = current_request_id()
    if request_id is not None:
        event_dict.setdefault("request_id", request_id)
    return event_dict


def configure_logging(level: str = "INFO") -> None:
    """Route structlog and stdlib logging to JSON lines on stdout."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _add_request_id,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _redact_secrets,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's own access log would duplicate ours without the request id.
    logging.getLogger("uvicorn.access").disabled = True


def configure_safe_defaults() -> None:
    """Until ``configure_logging`` runs (tests, an app embedded by another server),
    structlog's own default renders exceptions with rich, local variables included,
    which prints any key or secret a frame holds. Plain tracebacks and redaction
    instead; ``configure_logging`` replaces this."""
    if structlog.is_configured():
        return
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redact_secrets,
            structlog.dev.ConsoleRenderer(colors=False),
        ]
    )


configure_safe_defaults()


def get_logger(name: str) -> Any:
    """A structlog logger bound to ``name``."""
    return structlog.get_logger(name)


class AccessLog:
    """One JSON line per request, written without the structlog pipeline.

    Every field is produced by the platform (route templates, never raw paths or
    headers; request ids are validated to a safe alphabet), so redaction has
    nothing to do here, and skipping the processor chain keeps the access log
    cheap on the path of every request.
    """

    def __init__(self) -> None:
        self._second = -1
        self._second_text = ""
        # JSON-quoted service names, methods and route templates: a bounded set
        # (they come from code and the HTTP parser), quoted once rather than per line.
        self._quoted: dict[str, str] = {}

    def _quote(self, text: str) -> str:
        quoted = self._quoted.get(text)
        if quoted is None:
            quoted = json.dumps(text)
            if len(self._quoted) < _MAX_QUOTED_STRINGS:
                self._quoted[text] = quoted
        return quoted

    def _timestamp(self, now: float) -> str:
        second = int(now)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._second_text}.{int((now - second) * 1_000_000):06d}Z"

    def write(
        self,
        service: str,
        method: str,
        route: str,
        status: int,
        elapsed_seconds: float,
        request_id: str,
    ) -> None:
        """Write the line for one finished request to stdout."""
        # request_id is limited to [A-Za-z0-9._:-] by tracing.accept_request_id,
        # so it needs no escaping; everything else is quoted by json.dumps.
        line = (
            f'{{"event":"request","service":{self._quote(service)},'
            f'"method":{self._quote(method)},"route":{self._quote(route)},'
            f'"status":{status},"duration_ms":{elapsed_seconds * 1000:.2f},'
            f'"request_id":"{request_id}","level":"info",'
            f'"timestamp":"{self._timestamp(time.time())}"}}\n'
        )
        # No flush per line: a flush is a write system call on the request path.
        # The platform flushes stdout on a short interval and at shutdown.
        sys.stdout.write(line)


async def flush_stdout_forever(interval_seconds: float) -> None:
    """Flush buffered log output every ``interval_seconds`` until cancelled."""
    try:
        while True:
            await asyncio.sleep(interval_seconds)
            sys.stdout.flush()
    finally:
        sys.stdout.flush()
