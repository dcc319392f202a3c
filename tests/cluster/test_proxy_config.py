"""The proxy's one template: compose's checked-in config cannot drift, the cluster's loads.

Not marked ``cluster``: these run in ``make test`` (no replicas needed).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.cluster.support import tool
from tests.conftest import _unavailable


def test_checked_in_compose_config_is_the_rendered_template() -> None:
    render_proxy = tool("render_proxy")
    checked_in = render_proxy.COMPOSE_CONFIG.read_text()
    assert checked_in == render_proxy.render(render_proxy.COMPOSE_TARGET), (
        "deploy/proxy/nginx.compose.conf differs from deploy/proxy/nginx.conf.j2: "
        "run `.venv/bin/python tools/render_proxy.py`"
    )
    assert render_proxy.main(["--check"]) == 0


def test_proxy_limits_follow_the_app_settings() -> None:
    render_proxy = tool("render_proxy")
    env = {
        "XYNERGY_MAX_BODY_BYTES": "2048",
        "XYNERGY_SERVER_MAX_HEAD_BYTES": "65536",
        "XYNERGY_SERVER_HEAD_TIMEOUT_SECONDS": "7.5",
        "XYNERGY_SERVER_KEEP_ALIVE_TIMEOUT_SECONDS": "9",
        "XYNERGY_SERVER_MAX_CONNECTIONS_PER_CLIENT": "17",
    }
    config = render_proxy.render(render_proxy.COMPOSE_TARGET, render_proxy.AppLimits.from_env(env))
    for line in (
        "client_max_body_size 2048;",
        "large_client_header_buffers 4 16k;",
        "client_header_timeout 7.5s;",
        "keepalive_timeout 8s;",  # upstream: a second below the app's
        "limit_conn xynergy_per_client 17;",
    ):
        assert line in config


def _directives(config: str) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in config.splitlines())
    return [line for line in lines if line]


def test_forwarding_headers_are_set_by_the_proxy_not_passed_from_clients() -> None:
    render_proxy = tool("render_proxy")
    directives = _directives(render_proxy.render(render_proxy.COMPOSE_TARGET))
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in directives
    assert not [d for d in directives if "$proxy_add_x_forwarded_for" in d]  # keeps forgeries
    # Only unreachable or silent replicas are retried; a sent write never is.
    assert "proxy_next_upstream error timeout;" in directives
    assert not [d for d in directives if "non_idempotent" in d]


def test_nginx_accepts_the_rendered_cluster_config(tmp_path: Path) -> None:
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        _unavailable("nginx", "not installed (apt-get install nginx-light)")
    cluster_tool = tool("cluster")
    # write_proxy_config runs `nginx -t` and raises when nginx refuses the file.
    config = cluster_tool.write_proxy_config(tmp_path, 18080, [18081, 18082, 18083])
    checked = subprocess.run(  # noqa: S603 - Debian's nginx
        cluster_tool.nginx_command(config, tmp_path, "-t"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr
    text = config.read_text()
    assert "listen 127.0.0.1:18080;" in text
    for port in (18081, 18082, 18083):
        assert f"server 127.0.0.1:{port} max_fails=3 fail_timeout=10s;" in text


@pytest.mark.parametrize("broken", ["client_max_body_size 1m 2m;", "listen;"])
def test_nginx_refusal_is_reported(tmp_path: Path, broken: str) -> None:
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        _unavailable("nginx", "not installed (apt-get install nginx-light)")
    cluster_tool = tool("cluster")
    config = cluster_tool.write_proxy_config(tmp_path, 18080, [18081])
    config.write_text(config.read_text().replace("server_tokens off;", broken))
    checked = subprocess.run(  # noqa: S603 - Debian's nginx
        cluster_tool.nginx_command(config, tmp_path, "-t"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode != 0
