"""`make cluster`: the compose topology as local processes, behind the same nginx config.

    python tools/cluster.py [--replicas 3] [--port 8800]

PostgreSQL and Redis are the ones on 127.0.0.1 (CI's); a missing Redis is started
here, a stopped PostgreSQL is started with ``pg_ctlcluster`` as ``.ci/run`` does.
A dedicated database (``xynergy_cluster``) is created afresh and migrated once,
then N all-in-one replicas (``xynergy serve``) start on loopback ports with
PostgreSQL, Redis and a key prefix of their own, and nginx, rendered from
deploy/proxy/nginx.conf.j2 by tools/render_proxy.py, serves them on one port.
It prints the URL and a bootstrap admin key and runs until Ctrl-C; then every
process it started is stopped by its PID and the database dropped.

The tests (tests/cluster) use ``running_cluster`` from this module. Every wait is
bounded; every address is 127.0.0.1; processes get a session of their own, so a
Ctrl-C reaches this process only and it stops the others in order.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import redis
from render_proxy import AppLimits, ProxyTarget, render

LOOPBACK = "127.0.0.1"
DATABASE_NAME = "xynergy_cluster"
POSTGRES_ADMIN_DSN = os.environ.get(
    "XYNERGY_CLUSTER_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_PORT = 6379
DEFAULT_PROXY_PORT = 8800
STARTUP_TIMEOUT_SECONDS = 180.0
SHUTDOWN_TIMEOUT_SECONDS = 15.0
CLI_TIMEOUT_SECONDS = 180.0
BACKEND_TIMEOUT_SECONDS = 30.0
_POLL_SECONDS = 0.1
ACCESS_LOG_NAME = "access.log"
# Connections per replica, kept small: three replicas and the test suite share one
# PostgreSQL (max_connections 100 on CI's Debian server).
REPLICA_POOL_ENV = {
    "XYNERGY_DATABASE_POOL_SIZE": "4",
    "XYNERGY_DATABASE_MAX_OVERFLOW": "4",
    "XYNERGY_RUNTIME_DBOS_POOL_SIZE": "3",
    "XYNERGY_REDIS_MAX_CONNECTIONS": "50",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def xynergy_command() -> list[str]:
    """The ``xynergy`` console script next to this interpreter."""
    script = Path(sys.executable).parent / "xynergy"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from xynergy.cli import main; main()"]


def _log(message: str) -> None:
    sys.stderr.write(f"cluster: {message}\n")
    sys.stderr.flush()


def _stop(process: subprocess.Popen[bytes], timeout: float = SHUTDOWN_TIMEOUT_SECONDS) -> None:
    """SIGTERM ``process`` (by its PID), SIGKILL it after ``timeout``; reap it."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):  # it may exit between poll and kill
        os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


def _get_status(url: str, timeout: float = 1.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (urllib.error.URLError, OSError):
        return None


@dataclass
class Replica:
    """One ``xynergy serve`` process."""

    name: str
    port: int
    data_dir: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``: the replica itself, not through the proxy."""
        return f"http://{LOOPBACK}:{self.port}"

    def log_text(self) -> str:
        """What the replica wrote to stdout and stderr so far."""
        return "".join(
            (self.data_dir / name).read_text(errors="replace")
            for name in ("stdout.log", "stderr.log")
        )


@dataclass
class Cluster:
    """Running replicas behind nginx, and what it takes to stop them."""

    work_dir: Path
    database_url: str
    redis_url: str
    redis_key_prefix: str
    proxy_port: int
    env: dict[str, str]
    replicas: list[Replica] = field(default_factory=list)
    proxy: subprocess.Popen[bytes] | None = None
    admin_key: str = ""
    admin_tenant_id: str = ""
    # Where the database was created (and is dropped): CI's server, or a test's own.
    postgres_admin_dsn: str = POSTGRES_ADMIN_DSN

    @property
    def proxy_url(self) -> str:
        """The URL clients use: nginx on 127.0.0.1."""
        return f"http://{LOOPBACK}:{self.proxy_port}"

    @property
    def proxy_dir(self) -> Path:
        """nginx's prefix: its config, pid, logs and temp files."""
        return self.work_dir / "nginx"

    @property
    def proxy_access_log(self) -> Path:
        """nginx's JSON access log (one line per request, with the upstream used)."""
        return self.proxy_dir / ACCESS_LOG_NAME

    def cli(self, *args: str) -> str:
        """Run ``xynergy <args>`` with the replicas' settings; its stdout."""
        result = subprocess.run(  # noqa: S603 - our own CLI
            [*xynergy_command(), *args],
            env=self.env | {"COLUMNS": "1000"},
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_SECONDS,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"xynergy {' '.join(args)} failed: {result.stderr or result.stdout}")
        return result.stdout


def _redis_up(port: int = REDIS_PORT) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1.0) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


async def _pg_execute(dsn: str, *statements: str) -> None:
    connection = await asyncpg.connect(dsn, timeout=5)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


def _pg_up() -> bool:
    try:
        asyncio.run(_pg_execute(POSTGRES_ADMIN_DSN, "SELECT 1"))
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    return True


def _ensure_postgres() -> None:
    if _pg_up():
        return
    _log("PostgreSQL is down; starting it with pg_ctlcluster (as .ci/run does)")
    versions = sorted(Path("/etc/postgresql").glob("*"))
    if not versions or shutil.which("pg_ctlcluster") is None:
        raise RuntimeError("PostgreSQL is not running on 127.0.0.1:5432 and is not installed")
    subprocess.run(  # noqa: S603 - Debian's wrapper, fixed arguments
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[0].name, "main", "start"],  # noqa: S607
        check=False,
        timeout=BACKEND_TIMEOUT_SECONDS,
    )
    deadline = time.monotonic() + BACKEND_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if _pg_up():
            return
        time.sleep(0.5)
    raise RuntimeError("PostgreSQL did not come up")


def _ensure_redis(work_dir: Path) -> subprocess.Popen[bytes] | None:
    """Nothing when Redis answers; otherwise a Redis started here (stopped by PID later)."""
    if _redis_up():
        return None
    _log("Redis is down; starting redis-server on 127.0.0.1:6379")
    process = subprocess.Popen(  # noqa: S603 - Debian's redis-server, fixed arguments
        [  # noqa: S607
            "redis-server",
            "--bind",
            LOOPBACK,
            "--port",
            str(REDIS_PORT),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(work_dir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + BACKEND_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if _redis_up():
            return process
        if process.poll() is not None:
            break
        time.sleep(0.2)
    _stop(process)
    raise RuntimeError("Redis did not come up")


def _recreate_database(name: str, admin_dsn: str = POSTGRES_ADMIN_DSN) -> str:
    quoted = '"' + name.replace('"', '""') + '"'
    asyncio.run(
        _pg_execute(
            admin_dsn,
            f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)",
            f"CREATE DATABASE {quoted}",
        )
    )
    base = admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}"


def _drop_database(database_url: str, admin_dsn: str = POSTGRES_ADMIN_DSN) -> None:
    name = database_url.rsplit("/", 1)[1]
    quoted = '"' + name.replace('"', '""') + '"'
    asyncio.run(_pg_execute(admin_dsn, f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))


def _delete_redis_keys(redis_url: str, prefix: str) -> int:
    """Delete this cluster's keys (its own prefix); how many."""
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    deleted = 0
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=prefix + "*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += int(client.delete(*batch))
                batch.clear()
        if batch:
            deleted += int(client.delete(*batch))
    finally:
        client.close()
    return deleted


def cluster_env(
    *,
    work_dir: Path,
    database_url: str,
    redis_url: str,
    redis_key_prefix: str,
    proxy_port: int,
    extra_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The settings every replica shares (the outer ``XYNERGY_*`` are not inherited)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("XYNERGY_")}
    settings = {
        "XYNERGY_ENVIRONMENT": "production",
        "XYNERGY_DATA_DIR": str(work_dir / "shared"),
        "XYNERGY_DATABASE_URL": database_url,
        "XYNERGY_REDIS_URL": redis_url,
        "XYNERGY_REDIS_KEY_PREFIX": redis_key_prefix,
        # nginx connects from 127.0.0.1: its X-Forwarded-For is the client address.
        "XYNERGY_TRUSTED_PROXIES": f"{LOOPBACK}/32",
        "XYNERGY_PUBLIC_BASE_URL": f"http://{LOOPBACK}:{proxy_port}",
        "XYNERGY_INTERNAL_TOKEN_SECRET": secrets.token_urlsafe(48),
        "XYNERGY_LOG_LEVEL": "WARNING",
        **REPLICA_POOL_ENV,
    }
    return base | settings | dict(extra_env or {})


def _start_replica(cluster: Cluster, index: int) -> Replica:
    name = f"replica-{index + 1}"
    port = free_port()
    data_dir = cluster.work_dir / name
    data_dir.mkdir(parents=True, exist_ok=True)
    env = cluster.env | {
        "XYNERGY_DATA_DIR": str(data_dir),
        "XYNERGY_REPLICA_ID": name,
        # One DBOS executor per replica: each recovers only the runs it was executing.
        "XYNERGY_RUNTIME_EXECUTOR_ID": name,
    }
    command = [*xynergy_command(), "serve", "--host", LOOPBACK, "--port", str(port)]
    with (
        (data_dir / "stdout.log").open("wb") as stdout,
        (data_dir / "stderr.log").open("wb") as stderr,
    ):
        process = subprocess.Popen(  # noqa: S603 - our own server
            command, env=env, stdout=stdout, stderr=stderr, start_new_session=True
        )
    return Replica(name=name, port=port, data_dir=data_dir, env=env, process=process)


def _wait_healthy(url: str, process: subprocess.Popen[bytes], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} while starting")
        if _get_status(url) == 200:
            return
        time.sleep(_POLL_SECONDS)
    raise TimeoutError(f"{what} not healthy after {timeout:.0f}s ({url})")


def proxy_target(proxy_dir: Path, proxy_port: int, upstream_ports: Sequence[int]) -> ProxyTarget:
    """The cluster's rendering of the proxy template: loopback, files under ``proxy_dir``."""
    root = os.geteuid() == 0
    return ProxyTarget(
        name="cluster",
        listen=f"{LOOPBACK}:{proxy_port}",
        upstreams=[f"{LOOPBACK}:{port}" for port in upstream_ports],
        pid_path=str(proxy_dir / "nginx.pid"),
        error_log=str(proxy_dir / "error.log"),
        access_log=str(proxy_dir / ACCESS_LOG_NAME),
        temp_dir=str(proxy_dir / "temp"),
        # As root, nginx's workers would otherwise run as nobody; run them as us.
        user=pwd.getpwuid(os.geteuid()).pw_name if root else None,
        worker_processes="2",
    )


def nginx_command(config: Path, prefix: Path, *extra: str) -> list[str]:
    """``nginx`` with ``config`` and its files under ``prefix``, plus ``extra`` arguments."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    return [binary, "-p", str(prefix), "-c", str(config), "-e", str(prefix / "error.log"), *extra]


def write_proxy_config(
    proxy_dir: Path,
    proxy_port: int,
    upstream_ports: Sequence[int],
    env: Mapping[str, str] | None = None,
) -> Path:
    """Render the proxy config and check it with ``nginx -t``; its path.

    ``env`` holds the replicas' settings, so the proxy's limits equal theirs.
    """
    (proxy_dir / "temp").mkdir(parents=True, exist_ok=True)
    config = proxy_dir / "nginx.conf"
    target = proxy_target(proxy_dir, proxy_port, upstream_ports)
    config.write_text(render(target, AppLimits.from_env(env)))
    checked = subprocess.run(  # noqa: S603 - Debian's nginx
        nginx_command(config, proxy_dir, "-t", "-q"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if checked.returncode != 0:
        raise RuntimeError(f"nginx -t refused {config}: {checked.stderr}")
    return config


def _start_proxy(cluster: Cluster, timeout: float) -> None:
    directory = cluster.proxy_dir
    ports = [replica.port for replica in cluster.replicas]
    config = write_proxy_config(directory, cluster.proxy_port, ports, cluster.env)
    with (directory / "stderr.log").open("wb") as stderr:
        cluster.proxy = subprocess.Popen(  # noqa: S603 - Debian's nginx
            nginx_command(config, directory, "-g", "daemon off;"),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    _wait_healthy(cluster.proxy_url + "/healthz", cluster.proxy, "nginx", timeout)


def _bootstrap(cluster: Cluster) -> tuple[str, str]:
    """The operator tenant's first admin key: (secret, tenant id)."""
    printed = json.loads(cluster.cli("bootstrap", "--json"))
    return str(printed["secret"]), str(printed["key"]["tenant_id"])


def stop_cluster(cluster: Cluster, *, keep_database: bool = False) -> None:
    """Stop nginx, then every replica, by PID; drop the database and the Redis keys."""
    if cluster.proxy is not None:
        _stop(cluster.proxy)
    for replica in cluster.replicas:
        with contextlib.suppress(ProcessLookupError):
            if replica.process.poll() is None:
                os.kill(replica.pid, signal.SIGTERM)
    for replica in cluster.replicas:
        _stop(replica.process)
    if not keep_database:
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            _drop_database(cluster.database_url, cluster.postgres_admin_dsn)
    with contextlib.suppress(redis.RedisError):
        _delete_redis_keys(cluster.redis_url, cluster.redis_key_prefix)


def restart_replica(
    cluster: Cluster, replica: Replica, timeout: float = STARTUP_TIMEOUT_SECONDS
) -> Replica:
    """Start ``replica`` again after a fault test stopped or killed it; the new one.

    Same name, port, data dir and settings (so the same DBOS executor id, and
    nginx's upstream list still names it); it replaces the old entry in
    ``cluster.replicas``. A replica still running is stopped first, by its PID.
    Its logs are appended to, so the first life's lines stay readable.
    """
    _stop(replica.process)
    command = [*xynergy_command(), "serve", "--host", LOOPBACK, "--port", str(replica.port)]
    with (
        (replica.data_dir / "stdout.log").open("ab") as stdout,
        (replica.data_dir / "stderr.log").open("ab") as stderr,
    ):
        process = subprocess.Popen(  # noqa: S603 - our own server
            command, env=replica.env, stdout=stdout, stderr=stderr, start_new_session=True
        )
    again = Replica(
        name=replica.name,
        port=replica.port,
        data_dir=replica.data_dir,
        env=replica.env,
        process=process,
    )
    cluster.replicas = [again if r.name == replica.name else r for r in cluster.replicas]
    try:
        _wait_healthy(again.base_url + "/healthz", process, again.name, timeout)
    except (RuntimeError, TimeoutError) as error:
        raise RuntimeError(f"{error}\n{again.log_text()[-4000:]}") from error
    return again


@contextmanager
def running_cluster(
    *,
    replicas: int = 3,
    proxy_port: int | None = None,
    extra_env: Mapping[str, str] | None = None,
    work_dir: Path | None = None,
    database_name: str = DATABASE_NAME,
    startup_timeout: float = STARTUP_TIMEOUT_SECONDS,
    postgres_admin_dsn: str | None = None,
    redis_url: str | None = None,
) -> Iterator[Cluster]:
    """PostgreSQL, Redis, ``replicas`` replicas and nginx until the block exits.

    Args:
        replicas: how many all-in-one ``xynergy serve`` processes.
        proxy_port: nginx's port on 127.0.0.1 (a free one by default).
        extra_env: ``XYNERGY_*`` settings for every replica (and the proxy's limits).
        work_dir: where logs, data dirs and nginx's files go (a temp dir by default).
        database_name: the PostgreSQL database, dropped and created afresh.
        startup_timeout: bound on each replica's and nginx's start.
        postgres_admin_dsn: a PostgreSQL of the caller's own (a fault test stops
            and restarts it): the database is created there, and that server is
            neither checked nor started here. Default: CI's, on port 5432.
        redis_url: a Redis of the caller's own (a fault test kills it), used as
            given. Default: CI's on port 6379, started here if it is down.
    """
    owned_dir = work_dir is None
    directory = Path(tempfile.mkdtemp(prefix="xynergy-cluster-")) if work_dir is None else work_dir
    (directory / "shared").mkdir(parents=True, exist_ok=True)
    own_redis: subprocess.Popen[bytes] | None = None
    cluster: Cluster | None = None
    try:
        admin_dsn = postgres_admin_dsn or POSTGRES_ADMIN_DSN
        if postgres_admin_dsn is None:
            _ensure_postgres()
        if redis_url is None:
            own_redis = _ensure_redis(directory)
            redis_url = f"redis://{LOOPBACK}:{REDIS_PORT}/0"
        database_url = _recreate_database(database_name, admin_dsn)
        prefix = f"xyn:cluster:{secrets.token_hex(4)}:"
        port = proxy_port or free_port()
        env = cluster_env(
            work_dir=directory,
            database_url=database_url,
            redis_url=redis_url,
            redis_key_prefix=prefix,
            proxy_port=port,
            extra_env=extra_env,
        )
        cluster = Cluster(
            work_dir=directory,
            database_url=database_url,
            redis_url=redis_url,
            redis_key_prefix=prefix,
            proxy_port=port,
            env=env,
            postgres_admin_dsn=admin_dsn,
        )
        started = time.monotonic()
        cluster.cli("migrate")
        cluster.admin_key, cluster.admin_tenant_id = _bootstrap(cluster)
        _log(f"database {database_name} migrated in {time.monotonic() - started:.1f}s")
        cluster.replicas = [_start_replica(cluster, index) for index in range(replicas)]
        for replica in cluster.replicas:
            try:
                _wait_healthy(
                    replica.base_url + "/healthz", replica.process, replica.name, startup_timeout
                )
            except (RuntimeError, TimeoutError) as error:
                raise RuntimeError(f"{error}\n{replica.log_text()[-4000:]}") from error
        _start_proxy(cluster, startup_timeout)
        _log(f"{replicas} replicas and nginx up in {time.monotonic() - started:.1f}s")
        yield cluster
    finally:
        if cluster is not None:
            stop_cluster(cluster)
        if own_redis is not None:
            _stop(own_redis)
        if owned_dir and not os.environ.get("XYNERGY_CLUSTER_KEEP_DIR"):
            shutil.rmtree(directory, ignore_errors=True)


def _serve_until_stopped(cluster: Cluster) -> int:
    stopping = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    while not stopping.wait(1.0):
        dead = [replica.name for replica in cluster.replicas if replica.process.poll() is not None]
        if cluster.proxy is not None and cluster.proxy.poll() is not None:
            dead.append("nginx")
        if dead:
            _log(f"exited unexpectedly: {', '.join(dead)}; stopping the rest")
            return 1
    _log("stopping")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Start the cluster, print where it is, run until Ctrl-C; the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=3, choices=range(1, 9), metavar="1..8")
    parser.add_argument("--port", type=int, default=DEFAULT_PROXY_PORT, help="nginx's port")
    parser.add_argument("--work-dir", type=Path, default=None, help="logs and data (temp dir)")
    parser.add_argument(
        "--database", default=DATABASE_NAME, help="PostgreSQL database, dropped and created"
    )
    args = parser.parse_args(argv)
    with running_cluster(
        replicas=args.replicas,
        proxy_port=args.port,
        work_dir=args.work_dir,
        database_name=args.database,
    ) as cluster:
        out = sys.stdout
        out.write(f"\nxynergy cluster at {cluster.proxy_url}\n")
        for replica in cluster.replicas:
            out.write(f"  {replica.name}: {replica.base_url} (pid {replica.pid})\n")
        proxy_pid = cluster.proxy.pid if cluster.proxy is not None else "?"
        out.write(f"  nginx: pid {proxy_pid}, logs in {cluster.proxy_dir}\n")
        out.write(f"  database: {cluster.database_url}\n")
        out.write(f"bootstrap admin key (shown once): {cluster.admin_key}\n")
        out.write(f"  (admin calls name the tenant: X-Xynergy-Tenant: {cluster.admin_tenant_id})\n")
        out.write("Ctrl-C stops everything.\n")
        out.flush()
        return _serve_until_stopped(cluster)


if __name__ == "__main__":
    sys.exit(main())
