"""The HTTP server ``xynergy serve`` runs, with its limits for clients met directly.

The server is uvicorn on uvloop with ``LimitedHttpToolsProtocol``
(``platform/http_protocol.py``): a thin subclass of uvicorn's httptools protocol
that bounds the request head in size and in total time, caps connections per
process and per peer address, and closes idle keep-alive connections (uvicorn's
own timeout). Chosen by measuring, the platform app behind each candidate, same
load (``bench/run.py`` keeps the comparison: its platform rows run through this
module and one row runs the same app on plain uvicorn, in the same rounds; the
figures are in bench/README.md):

* this subclass keeps httptools' C parser; per request it adds two overridden
  callbacks with a few integer operations, and no timer or clock read unless a
  head spans reads (one timer per server walks the slow heads): ~2 µs in process
  against ~100 µs for a platform request, req/s within the bench's noise of
  plain uvicorn (same-run ratio 1.00 to 1.07), server CPU per request +1 to +6 %;
* uvicorn's h11 protocol bounds the head (``h11_max_incomplete_event_size``) but
  parses in pure Python: +54 % server CPU per request, 0.64x the req/s, and it
  has neither a head deadline nor a per-client cap;
* uvicorn's ``limit_concurrency`` answers 503 only once a head has arrived (a slow
  head keeps its descriptor meanwhile) and counts every client alike;
* another server (granian and the like) would be a second native dependency and
  would still need the per-address cap from somewhere.

Every limit is a setting (``server_*`` in ``Settings``). The process cap is kept
below the file descriptor limit at start, so connections cannot exhaust it.
"""

from __future__ import annotations

import errno
import resource
import signal
import socket
from types import FrameType
from typing import Any

import uvicorn

from xynergy.platform import draining
from xynergy.platform.config import Settings
from xynergy.platform.http_limits import ServerLimits
from xynergy.platform.http_protocol import limited_protocol
from xynergy.platform.logging import get_logger
from xynergy.platform.metrics_port import LOOPBACK

__all__ = ["bind_listener", "connection_cap", "run", "server_limits", "uvicorn_options"]

log = get_logger(__name__)


def connection_cap(settings: Settings) -> int:
    """``server_max_connections``, lowered if the descriptor limit cannot hold it.

    Raises the soft ``RLIMIT_NOFILE`` towards the hard one when that makes room
    (as Go's runtime does at start). If that is still short, the cap becomes the
    limit minus ``server_reserved_fds``, or half the limit when the reserve would
    leave less (a small development limit), and a warning says so.
    """
    wanted = settings.server_max_connections + settings.server_reserved_fds
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if raised > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return settings.server_max_connections
    cap = max(soft - settings.server_reserved_fds, soft // 2)
    log.warning(
        "http.connection_cap_lowered",
        configured=settings.server_max_connections,
        effective=cap,
        fd_limit=soft,
        reserved_fds=soft - cap,
    )
    return cap


def server_limits(settings: Settings) -> ServerLimits:
    """The limits of one server process, from ``settings`` and the descriptor limit."""
    return ServerLimits(
        max_head_bytes=settings.server_max_head_bytes,
        head_timeout_seconds=settings.server_head_timeout_seconds,
        max_connections=connection_cap(settings),
        max_connections_per_client=settings.server_max_connections_per_client,
        ipv6_client_prefix=settings.server_ipv6_client_prefix,
        trusted_proxies=tuple(settings.trusted_proxies),
    )


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run``/``uvicorn.Config``, host and port aside."""
    return {
        "loop": "uvloop",
        "http": limited_protocol(server_limits(settings)),
        "timeout_keep_alive": settings.server_keep_alive_timeout_seconds,
        "access_log": False,
        "log_config": None,
        # Client addresses are resolved by our trusted-proxy rule (client_ip.py).
        "proxy_headers": False,
    }


def run(app: Any, settings: Settings, *, host: str, port: int) -> None:
    """Serve ``app`` on ``host:port`` until interrupted, with the limits of ``settings``.

    Raises:
        SystemExit: with a one-line message naming the setting to change, when the
            address cannot be bound (in use, not local, or a privileged port).
    """
    # Bound here, before the app starts: the lifespan (database, Redis, workers)
    # never opens for an address we cannot serve, and the failure is one line, not
    # uvicorn's log after a full start-up.
    listener = bind_listener(host, port)
    if settings.metrics_port:
        # The loopback metrics listener starts inside the lifespan, where a taken
        # port would end in uvicorn's traceback: try its address first.
        bind_listener(LOOPBACK, settings.metrics_port, setting="XYNERGY_METRICS_PORT").close()
    if settings.secrets_reload_on_sighup:
        # SIGHUP reloads secrets once the lifespan has installed its handler
        # (platform/secrets/watch.py); until then its default action would end
        # the process, so a reload asked for during start-up is dropped instead.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    log.info("http.listening", host=host, port=listener.getsockname()[1])
    config = uvicorn.Config(app, host=host, port=port, **uvicorn_options(settings))
    _DrainingServer(config).run(sockets=[listener])


class _DrainingServer(uvicorn.Server):
    """uvicorn's server that also tells the app it is stopping (``platform.draining``),
    so long-lived streams end themselves instead of holding the shutdown open."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        draining.begin()
        super().handle_exit(sig, frame)


def bind_listener(host: str, port: int, *, setting: str = "") -> socket.socket:
    """A TCP socket bound to ``host:port`` (not yet listening), as uvicorn binds one.

    Raises:
        SystemExit: when the address cannot be bound; the message names ``setting``,
            else the settings and options that move the main listener.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    # As uvicorn does: a restart may bind while old connections sit in TIME_WAIT.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        raise SystemExit(_bind_failure(host, port, exc, setting)) from None
    listener.set_inheritable(True)
    return listener


def _bind_failure(host: str, port: int, exc: OSError, setting: str) -> str:
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if setting:
        return f"error: cannot bind {address} ({exc.strerror or exc}); change {setting}"
    if exc.errno == errno.EADDRINUSE:
        return (
            f"error: {address} is already in use; serve on another port with "
            "XYNERGY_PORT, `xynergy serve --port N` or `make run PORT=N`"
        )
    if exc.errno == errno.EACCES:
        return (
            f"error: no permission to bind {address} (ports below 1024 need privileges); "
            "choose another with XYNERGY_PORT, `xynergy serve --port N` or `make run PORT=N`"
        )
    return (
        f"error: cannot bind {address}: {exc.strerror or exc}; choose the address with "
        "XYNERGY_HOST, `xynergy serve --host` or `make run HOST=`"
    )
