"""Render the reverse proxy's nginx configuration from deploy/proxy/nginx.conf.j2.

    python tools/render_proxy.py          # rewrite deploy/proxy/nginx.compose.conf
    python tools/render_proxy.py --check  # exit 1 with a diff when it is out of date

There is one template. Compose gets ``deploy/proxy/nginx.compose.conf`` (checked in,
replicas reached by compose service name); ``make cluster`` (tools/cluster.py)
renders the same template with loopback ports and a temp dir. Limits that must
match the app's (body size, head size and timeout, keep-alive, connections per
client) are read from the settings model, so the proxy and the replicas agree.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import jinja2

from xynergy.platform.config import Settings

ROOT = Path(__file__).resolve().parents[1]
PROXY_DIR = ROOT / "deploy" / "proxy"
TEMPLATE = PROXY_DIR / "nginx.conf.j2"
COMPOSE_CONFIG = PROXY_DIR / "nginx.compose.conf"
# The compose file's app service (scaled to N replicas) on the port the image
# serves on; nginx resolves the name to every replica's address when it starts.
COMPOSE_UPSTREAMS = ("app:8080",)
COMPOSE_LISTEN = "8080"
DEBIAN_MIME_TYPES = "/etc/nginx/mime.types"


@dataclass(frozen=True)
class AppLimits:
    """The app settings the proxy must agree with (defaults, or a replica's env)."""

    max_body_bytes: int
    max_head_bytes: int
    head_timeout_seconds: float
    keep_alive_timeout_seconds: int
    max_connections_per_client: int
    request_id_max_length: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AppLimits:
        """The settings' defaults, overridden by ``XYNERGY_*`` values in ``env``."""
        env = env or {}

        def value(field: str) -> str:
            name = "XYNERGY_" + field.upper()
            if name in env:
                return env[name]
            return str(Settings.model_fields[field].default)

        return cls(
            max_body_bytes=int(value("max_body_bytes")),
            max_head_bytes=int(value("server_max_head_bytes")),
            head_timeout_seconds=float(value("server_head_timeout_seconds")),
            keep_alive_timeout_seconds=int(value("server_keep_alive_timeout_seconds")),
            max_connections_per_client=int(value("server_max_connections_per_client")),
            request_id_max_length=int(value("request_id_max_length")),
        )


@dataclass(frozen=True)
class ProxyTarget:
    """Where one rendering runs: what differs between compose and the local cluster."""

    name: str
    listen: str
    upstreams: Sequence[str]
    pid_path: str
    error_log: str
    access_log: str
    temp_dir: str | None = None
    user: str | None = None
    worker_processes: str = "auto"
    mime_types: str = DEBIAN_MIME_TYPES


COMPOSE_TARGET = ProxyTarget(
    name="compose",
    listen=COMPOSE_LISTEN,
    upstreams=COMPOSE_UPSTREAMS,
    pid_path="/tmp/nginx.pid",  # noqa: S108 - inside the proxy's container
    error_log="/dev/stderr",
    access_log="/dev/stdout",
    temp_dir="/tmp",  # noqa: S108 - inside the proxy's container (nginx makes no parents)
)


def _seconds(value: float) -> str:
    return f"{value:g}"


def render(target: ProxyTarget, limits: AppLimits | None = None) -> str:
    """The nginx configuration for ``target``, with ``limits`` (default: the settings' defaults)."""
    limits = limits or AppLimits.from_env()
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(PROXY_DIR),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - nginx configuration, not HTML
    )
    values = asdict(target) | {
        "target": target.name,
        "max_body_bytes": limits.max_body_bytes,
        # Four buffers of a quarter each: no header line longer, no head larger in
        # total than the app's server_max_head_bytes.
        "header_line_kib": max(1, limits.max_head_bytes // 4 // 1024),
        "head_timeout_seconds": _seconds(limits.head_timeout_seconds),
        "body_timeout_seconds": 15,
        "send_timeout_seconds": 30,
        "client_keepalive_seconds": 30,
        # Below the app's keep-alive timeout, so nginx closes an idle connection
        # first and never sends a request down one the replica is closing.
        "upstream_keepalive_seconds": max(1, limits.keep_alive_timeout_seconds - 1),
        "upstream_keepalive": 32,
        "max_connections_per_client": limits.max_connections_per_client,
        "request_id_max_length": limits.request_id_max_length,
        "max_fails": 3,
        "fail_timeout_seconds": 10,
        "connect_timeout_seconds": 2,
        "read_timeout_seconds": 120,
        "stream_timeout_seconds": 3600,
        "next_upstream_tries": 2,
        "next_upstream_timeout_seconds": 10,
    }
    return environment.get_template(TEMPLATE.name).render(values)


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check``, compare) deploy/proxy/nginx.compose.conf; the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when stale")
    args = parser.parse_args(argv)
    wanted = render(COMPOSE_TARGET)
    current = COMPOSE_CONFIG.read_text() if COMPOSE_CONFIG.exists() else ""
    if args.check:
        if current == wanted:
            return 0
        sys.stdout.writelines(
            difflib.unified_diff(
                current.splitlines(keepends=True),
                wanted.splitlines(keepends=True),
                str(COMPOSE_CONFIG),
                "rendered",
            )
        )
        sys.stderr.write(f"out of date: {COMPOSE_CONFIG}; run tools/render_proxy.py\n")
        return 1
    COMPOSE_CONFIG.write_text(wanted)
    sys.stdout.write(f"wrote {COMPOSE_CONFIG}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
