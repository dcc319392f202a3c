"""Settings: every tunable number and URL of the platform, read from ``XYNERGY_*``.

Code paths never hold literals for limits, timeouts or addresses; they read them
here, so an operator can change them without a code change and a reviewer can see
them all in one place.
"""

from __future__ import annotations

import ipaddress
import json
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from limits import parse as parse_limit
from platformdirs import user_data_dir
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from xynergy.platform.secrets.source import secret_fields_from_files

__all__ = [
    "DEFAULT_RATE_LIMITS",
    "MIN_INTERNAL_SECRET_LENGTH",
    "Settings",
    "default_data_dir",
    "get_settings",
]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# The review's table: expensive AI calls are the scarce resource, reads the cheap one.
DEFAULT_RATE_LIMITS: dict[str, str] = {
    "ai_expensive": "10/hour",
    "ai_generate": "100/hour",
    "writes": "500/hour",
    "reads": "1000/hour",
    "workflow_start": "50/hour",
    "public": "300/hour",
    # Per client IP: the pages, their assets and the OpenAPI documents. A docs page
    # view costs a handful of hits the first time (assets are cached for a year).
    "docs": "1200/hour",
    "admin": "1000/hour",
    # Per client IP: failed authentications before further failures answer 429
    # (with Retry-After) instead of 401. Valid keys from the address still pass.
    "auth_failures": "100/minute",
    # Per key: a scrape renders every series (hundreds of KiB); Prometheus needs
    # one every few seconds at most.
    "metrics": "60/minute",
    # Per client IP: browser sign-ins (POST /session); a failed key also counts
    # against auth_failures.
    "sign_in": "60/minute",
    # Per client IP: a page reads (GET /session) or ends (DELETE /session) its
    # session, about once per page load.
    "session": "3600/hour",
}

# Of the internal token secrets; also checked when they are reloaded live.
MIN_INTERNAL_SECRET_LENGTH = 32
_APP_NAME = "xynergy"


def default_data_dir() -> Path:
    """The data dir unless ``XYNERGY_DATA_DIR`` names one: the user data directory.

    Linux: ``$XDG_DATA_HOME/xynergy`` (``~/.local/share/xynergy`` without it);
    macOS: ``~/Library/Application Support/xynergy``. Never the working directory,
    so ``make run`` and the CLI find the same database from anywhere.
    """
    return Path(user_data_dir(_APP_NAME, appauthor=False))


def _split_csv(value: Any) -> Any:
    """Accept ``a,b`` or a JSON list from the environment for list settings."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """All platform settings; prefix ``XYNERGY_`` (e.g. ``XYNERGY_DATABASE_URL``)."""

    model_config = SettingsConfigDict(env_prefix="XYNERGY_", extra="ignore", frozen=True)

    environment: Literal["development", "test", "production"] = Field(
        default="development",
        description="development, test or production; production refuses unsafe values (no internal"
        " token secret, http:// CORS origins) and sends HSTS.",
    )
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="SQLite file and generated development secrets. Default: the user data "
        "directory ($XDG_DATA_HOME/xynergy, i.e. ~/.local/share/xynergy on Linux; "
        "~/Library/Application Support/xynergy on macOS), never the working directory.",
    )

    # --- storage -----------------------------------------------------------
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL; default is a SQLite file in data_dir.",
    )
    database_pool_size: int = Field(
        default=10, ge=1, le=200, description="Connections kept open per process (PostgreSQL)."
    )
    database_max_overflow: int = Field(
        default=10,
        ge=0,
        le=200,
        description="Connections opened beyond the pool size under load (PostgreSQL).",
    )
    database_pool_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=120,
        description="How long a request waits for a free pooled connection.",
    )
    # --- lock contention (issue 10: a locked database is a 503, not a 500) -------
    sqlite_busy_timeout_ms: int = Field(
        default=5000,
        ge=0,
        le=60_000,
        description="How long a SQLite write waits for other writers before it is "
        "answered 503 database_busy.",
    )
    postgres_lock_timeout_ms: int = Field(
        default=5000,
        ge=0,
        le=600_000,
        description="PostgreSQL lock_timeout of the app's connections: how long a "
        "statement waits for a row or table lock before 503 database_busy (0: forever).",
    )
    database_busy_retry_after_seconds: int = Field(
        default=1,
        ge=1,
        le=3600,
        description="Retry-After of a 503 database_busy answer.",
    )
    database_unavailable_retry_after_seconds: int = Field(
        default=5,
        ge=1,
        le=3600,
        description="Retry-After of a 503 database_unavailable answer (the database refused "
        "or dropped the connection).",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis URL (redis://host:6379/0); unset: in-process rate limits, cache and "
        "revocation only (one replica).",
    )
    redis_key_prefix: str = Field(
        default="xyn:",
        min_length=1,
        max_length=64,
        description="Prefix of the Redis keys the platform writes, so several deployments can "
        "share one Redis (the cache's tag sets, named by cashews, start with `_tag:<prefix>`).",
    )
    redis_max_connections: int = Field(
        default=50, ge=1, le=10_000, description="Redis connections per process."
    )
    redis_socket_timeout_seconds: float = Field(
        default=2.0, gt=0, le=60, description="Timeout of one Redis command."
    )
    redis_reconnect_backoff_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="Wait before a lost Redis subscription (key revocation, cache invalidation) "
        "reconnects, and before circuit breakers running on local state try Redis again.",
    )
    redis_health_check_interval_seconds: int = Field(
        default=30,
        ge=0,
        le=3600,
        description="Idle Redis connections are checked this often (0: never).",
    )
    redis_unavailable_retry_after_seconds: int = Field(
        default=5,
        ge=1,
        le=3600,
        description="Retry-After of a 503 redis_unavailable answer (an operation that cannot "
        "fall back to local state, such as an AI budget reservation).",
    )

    # --- HTTP surface -------------------------------------------------------
    host: str = Field(
        default="127.0.0.1",
        description="Address xynergy serve binds to (--host overrides; make run HOST=).",
    )
    port: int = Field(
        default=8080,
        ge=1,
        le=65535,
        description="Port xynergy serve listens on (--port overrides; make run PORT=).",
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:8080",
        description="The URL clients reach the platform at (behind a proxy: the proxy's URL).",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Browser origins allowed to call the API, exact scheme://host[:port]; comma-"
        "separated or JSON; * is refused; empty: no cross-origin calls.",
    )
    cors_methods: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["GET", "POST", "PATCH", "PUT", "DELETE"],
        description="Methods allowed in cross-origin calls; comma-separated or JSON.",
    )
    cors_headers: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [
            "Authorization",
            "Content-Type",
            "X-API-Key",
            "X-Request-ID",
            "Idempotency-Key",
        ],
        description="Request headers allowed in cross-origin calls; comma-separated or JSON.",
    )
    cors_max_age_seconds: int = Field(
        default=600,
        ge=0,
        le=86_400,
        description="How long a browser may cache a CORS preflight answer.",
    )
    trusted_proxies: Annotated[list[IPNetwork], NoDecode] = Field(
        default_factory=list,
        description="Networks (CIDR) of reverse proxies whose X-Forwarded-For is believed for the "
        "client address; comma-separated or JSON.",
    )
    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        le=1_073_741_824,
        description="Largest request body, in bytes; larger gets 413 (uploads: max_upload_bytes).",
    )
    max_upload_bytes: int = Field(
        default=256 * 1_048_576,
        ge=1024,
        le=4 * 1_073_741_824,
        description="Largest body of an upload route (bulk import), in bytes; larger gets 413.",
    )
    request_id_max_length: int = Field(
        default=128,
        ge=16,
        le=1024,
        description="Longest X-Request-ID accepted from a client; a longer or malformed one is "
        "replaced.",
    )
    access_log: bool = Field(default=True, description="Write one JSON log line per request.")
    log_flush_interval_seconds: float = Field(
        default=0.5, gt=0, le=60, description="How often buffered log output is flushed to stdout."
    )
    gc_freeze_after_startup: bool = Field(
        default=True,
        description="Move start-up objects out of the collector's reach: full GC passes "
        "over them otherwise stall requests for tens of ms.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Lowest level of log lines written."
    )
    hsts_max_age_seconds: int = Field(
        default=31_536_000,
        ge=0,
        description="max-age of the Strict-Transport-Security header sent in production (0: none).",
    )

    page_size_default: int = Field(
        default=50, ge=1, le=1000, description="Items per page of a list that names no limit."
    )
    page_size_max: int = Field(
        default=200, ge=1, le=1000, description="Largest limit a list accepts."
    )

    # --- HTTP server limits (xynergy serve; platform/serving.py) --------------
    server_max_head_bytes: int = Field(
        default=32_768,
        ge=1024,
        le=1_048_576,
        description="Request line plus headers; a longer head is answered 431 and closed.",
    )
    server_head_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="Total time to receive a request head, from the connection's start or "
        "the request's first byte (not per line); then 408 and close.",
    )
    server_keep_alive_timeout_seconds: int = Field(
        default=5, ge=1, le=300, description="Idle time before a keep-alive connection closes."
    )
    server_max_connections: int = Field(
        default=10_000,
        ge=16,
        le=1_000_000,
        description="Open connections per process; lowered at start to fit the file "
        "descriptor limit minus server_reserved_fds.",
    )
    server_max_connections_per_client: int = Field(
        default=256,
        ge=1,
        le=1_000_000,
        description="Open connections per peer address (IPv6: per prefix below); "
        "trusted_proxies are exempt.",
    )
    server_ipv6_client_prefix: int = Field(
        default=64,
        ge=16,
        le=128,
        description="IPv6 clients are counted per network of this prefix length for "
        "server_max_connections_per_client.",
    )
    server_reserved_fds: int = Field(
        default=1024,
        ge=64,
        le=1_000_000,
        description="File descriptors kept for everything but client connections "
        "(database, Redis and HTTP pools, log files).",
    )

    # --- request metrics (issue 10: bounded instance state) ---------------------
    request_metrics_series_cache_max_entries: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="Metric children remembered per service for (method, route, status); "
        "label values are bounded already, this is a second line of defence.",
    )

    # --- process resources and memory pressure (issue 14; platform/process_monitor.py) ---
    log_dir: Path | None = Field(
        default=None,
        description="Directory the process's logs are written to (by the supervisor that "
        "captures stdout), whose disk use /metrics and the dashboard report; null: not reported.",
    )
    loop_lag_interval_seconds: float = Field(
        default=0.1,
        gt=0,
        le=60,
        description="How often the event loop's lag is sampled (a timer's lateness); a block "
        "of the loop shows as at least its length minus this.",
    )
    loop_lag_history: int = Field(
        default=120,
        ge=1,
        le=100_000,
        description="Lag samples kept (the maximum and mean are over these).",
    )
    memory_pressure_rss_bytes: int | None = Field(
        default=None,
        ge=1,
        description="Resident memory (bytes) above which the platform's bounded in-process "
        "caches shrink to memory_pressure_shrink_factor of their bound, until memory falls "
        "below memory_pressure_recovery_ratio of it; null: never.",
    )
    memory_pressure_shrink_factor: float = Field(
        default=0.5, gt=0, lt=1, description="Share of its bound a cache keeps under pressure."
    )
    memory_pressure_recovery_ratio: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description="The caches grow back once resident memory is below this share of the "
        "threshold (a margin against flapping).",
    )
    memory_check_interval_seconds: float = Field(
        default=5.0, gt=0, le=3600, description="How often resident memory is compared."
    )

    # --- per-minute rollups in SQL (issue 14: time series without a metrics server) ---
    rollups_enabled: bool = Field(
        default=True,
        description="Count requests, cache lookups and AI use per minute and write them to "
        "the rollup tables (read by the dashboard's /api/metrics/series).",
    )
    replica_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="This replica's name on its rollup rows; default: host, process id and "
        "a random suffix (unique per start).",
    )
    rollup_flush_seconds: float = Field(
        default=60.0,
        ge=0.05,
        le=3600,
        description="How often ended minutes are turned into rollup rows and written.",
    )
    rollup_max_series_per_minute: int = Field(
        default=5000,
        ge=1,
        le=1_000_000,
        description="Distinct series (service+route, cache namespace, tenant+model) counted "
        "per minute in process; events of further series are dropped and counted.",
    )
    rollup_queue_max_rows: int = Field(
        default=50_000,
        ge=1,
        le=10_000_000,
        description="Rollup rows waiting to be written at most; more are dropped and counted "
        "(xynergy_rollup_rows_dropped).",
    )
    rollup_batch_max_rows: int = Field(
        default=1000, ge=1, le=100_000, description="Rollup rows per INSERT batch at most."
    )
    rollup_retention_days: int = Field(
        default=400, ge=1, le=3650, description="Rollup rows older than this are deleted."
    )
    rollup_retention_batch: int = Field(
        default=5000,
        ge=1,
        le=100_000,
        description="Expired rollup rows deleted per statement (per table).",
    )
    rollup_retention_max_batches: int = Field(
        default=1000,
        ge=1,
        le=1_000_000,
        description="Batches of expired rollup rows deleted per maintenance tick at most.",
    )
    metrics_series_max_days: int = Field(
        default=31,
        ge=1,
        le=3650,
        description="Longest range GET /api/metrics/series answers (to - from).",
    )
    metrics_series_max_points: int = Field(
        default=1440,
        ge=1,
        le=100_000,
        description="Most points GET /api/metrics/series answers; step must be at least "
        "range / this.",
    )
    metrics_listing_max_items: int = Field(
        default=100,
        ge=1,
        le=10_000,
        description="Most rows the metric listings answer (services, routes, cache namespaces, "
        "rate limits with data in a range), busiest first; their limit parameter is at most this.",
    )
    metrics_grouped_max_series: int = Field(
        default=10,
        ge=1,
        le=100,
        description="Most series GET /api/metrics/series/grouped answers (the busiest groups); "
        "its points times its series stay within metrics_series_max_points times this.",
    )

    # --- cache -----------------------------------------------------------------
    cache_schema_version: int = Field(
        default=1, ge=1, description="Part of every cache key; bump to orphan old entries."
    )
    cache_memory_max_entries: int = Field(
        default=10_000,
        ge=10,
        le=10_000_000,
        description="Entries of the in-process cache (LRU beyond).",
    )
    cache_default_ttl_seconds: float = Field(
        default=300.0,
        gt=0,
        le=30 * 86_400,
        description="TTL of cache namespaces that set none (see cache_ttls).",
    )
    cache_ttls: dict[str, float] = Field(
        default_factory=dict,
        description="Cache namespace -> TTL seconds, JSON object; others use the default.",
    )
    cache_max_inflight: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="Distinct cache misses computed at once, each shared by its concurrent callers.",
    )
    cache_client_side_listen_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="Reserved for Redis client-side cache tracking; not read yet.",
    )

    # --- keys and internal tokens -------------------------------------------
    key_cache_ttl_seconds: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="How long a verified API key is trusted without reading the database "
        "(revocations clear it at once).",
    )
    key_cache_max_entries: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="Verified (and known-unknown) API keys cached per process.",
    )
    key_last_used_flush_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="How often keys' last_used_at times are written to the database.",
    )
    key_rotation_grace_seconds: int = Field(
        default=86_400,
        ge=0,
        le=30 * 86_400,
        description="How long a rotated key keeps working beside its replacement.",
    )
    # --- key revocation without Redis (revocation epoch) ---------------------
    key_revocation_poll_seconds: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="How often each replica reads the revocation epoch from the database; "
        "a revocation made anywhere (API, CLI, another replica) is enforced within this "
        "interval, with or without Redis.",
    )
    internal_token_secret: SecretStr | None = Field(
        default=None,
        description="Signs tokens of calls between services; at least 32 characters, required in "
        "production; unset in development: generated into data_dir. Or a file: "
        "XYNERGY_INTERNAL_TOKEN_SECRET_FILE (reloaded live; rotation: docs/runbooks.md).",
    )
    internal_token_previous_secret: SecretStr | None = Field(
        default=None,
        description="The secret before a rotation, still accepted (never signs) until every "
        "replica signs with the new one. Or a file: XYNERGY_INTERNAL_TOKEN_PREVIOUS_SECRET_FILE "
        "(reloaded live; docs/runbooks.md).",
    )
    internal_token_next_secret: SecretStr | None = Field(
        default=None,
        description="The secret a rotation moves to, accepted (never signs) before any replica "
        "signs with it. Or a file: XYNERGY_INTERNAL_TOKEN_NEXT_SECRET_FILE (reloaded live; "
        "docs/runbooks.md).",
    )
    internal_token_ttl_seconds: int = Field(
        default=60, ge=5, le=600, description="Lifetime of an internal call token."
    )
    internal_token_leeway_seconds: int = Field(
        default=5,
        ge=0,
        le=60,
        description="Clock skew tolerated between replicas when checking token times.",
    )

    # --- secrets from files, reloaded live (issue 17; platform/secrets) ----------
    secret_file_max_bytes: int = Field(
        default=65_536,
        ge=64,
        le=16_777_216,
        description="Largest secret file (<NAME>_FILE) read, in bytes; a larger one is refused.",
    )
    secrets_poll_interval_seconds: float = Field(
        default=5.0,
        ge=0,
        le=3600,
        description="How often secret files and the AI catalogue are checked for changes "
        "(modification time, size, inode); a change reloads them (0: only on SIGHUP or "
        "POST /admin/secrets/reload).",
    )
    secrets_reload_on_sighup: bool = Field(
        default=True,
        description="Reload secrets and the AI catalogue when the process receives SIGHUP.",
    )

    # --- Idempotency-Key on authenticated writes (platform/idempotency.py) ------
    idempotency_ttl_seconds: int = Field(
        default=86_400,
        ge=60,
        le=30 * 86_400,
        description="How long a write's outcome is kept under its Idempotency-Key: a repeat "
        "within this time replays it; after it, the key may be used afresh.",
    )
    idempotency_max_response_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        le=64 * 1_048_576,
        description="Largest response body kept for replay; a repeat of a write whose answer "
        "was larger is refused (409 idempotency_response_not_stored), never run again.",
    )
    idempotency_pending_timeout_seconds: int = Field(
        default=300,
        ge=5,
        le=86_400,
        description="A first request still unfinished after this long is taken to have "
        "crashed: a repeat runs the write again instead of answering 409.",
    )
    idempotency_in_progress_retry_after_seconds: int = Field(
        default=1,
        ge=1,
        le=3600,
        description="Retry-After of the 409 idempotency_in_progress answered to a repeat "
        "while the first request runs.",
    )
    idempotency_purge_interval_seconds: float = Field(
        default=300.0,
        ge=1,
        le=86_400,
        description="How often expired Idempotency-Key records are deleted.",
    )
    idempotency_purge_batch_size: int = Field(
        default=500,
        ge=1,
        le=10_000,
        description="Expired Idempotency-Key records deleted per statement.",
    )
    # --- browser sign-in: session cookies (platform/web_sessions) --------------
    web_session_ttl_seconds: int = Field(
        default=43_200,
        ge=60,
        le=30 * 86_400,
        description="Absolute lifetime of a browser session made by POST /session; the key's "
        "own expiry, revocation or rotation ends it sooner.",
    )
    web_session_max_per_key: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="Browser sessions kept per API key; a sign-in beyond this ends the oldest.",
    )
    web_session_cookie_secure: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="Secure attribute of the session cookie: auto sets it when the request came "
        "over https (directly, or X-Forwarded-Proto from trusted_proxies); always; never.",
    )
    web_session_cache_ttl_seconds: float = Field(
        default=30.0,
        ge=0,
        le=300,
        description="How long a session row is trusted in process without reading the database; "
        "bounds how late a sign-out on another replica is seen without Redis (the key itself is "
        "re-checked on every request).",
    )
    web_session_cache_max_entries: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="Sessions (and unknown session tokens) cached per process.",
    )
    web_session_purge_batch_size: int = Field(
        default=500,
        ge=1,
        le=10_000,
        description="Expired browser sessions deleted per statement by the maintenance job.",
    )
    # --- rate limits ----------------------------------------------------------
    rate_limits: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_RATE_LIMITS),
        description="Rate-limit class -> N/period (e.g. 100/hour); JSON object naming every class.",
    )
    rate_limit_memory_max_keys: int = Field(
        default=50_000,
        ge=100,
        le=10_000_000,
        description="Rate-limit counters held in process without Redis (least recently used dropped"
        " beyond).",
    )

    # --- probes and metrics (issue 10: /readyz and /metrics under hostile clients) ---
    readiness_cache_seconds: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="/readyz answers from a backend check at most this old; concurrent "
        "callers share one check in flight.",
    )
    readiness_check_timeout_seconds: float = Field(
        default=2.0, gt=0, le=60, description="Longest a backend check may take before it fails."
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Also serve /metrics without a key on this port, bound to 127.0.0.1 "
        "only (for a local Prometheus); the main port always requires metrics:read.",
    )
    metrics_port_max_connections: int = Field(
        default=16,
        ge=1,
        le=1024,
        description="Connections at once to the loopback metrics port; more are closed on arrival.",
    )
    metrics_port_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="Time a connection to the loopback metrics port has for its whole exchange.",
    )

    # --- inter-service calls ---------------------------------------------------
    service_urls: dict[str, str] = Field(
        default_factory=dict,
        description="Service slug -> base URL, JSON object; a slug absent here is called in-process.",
    )
    http_connect_timeout_seconds: float = Field(
        default=3.0,
        gt=0,
        le=60,
        description="Connect timeout of outbound HTTP calls (other services, providers, webhooks).",
    )
    http_read_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="Timeout between bytes read of an outbound HTTP call.",
    )
    http_total_timeout_seconds: float = Field(
        default=60.0, gt=0, le=3600, description="Total timeout of one outbound HTTP call."
    )
    http_pool_limit: int = Field(
        default=100, ge=1, le=10_000, description="Outbound HTTP connections per process."
    )
    breaker_failure_threshold: int = Field(
        default=5, ge=1, le=1000, description="Consecutive failures that open a circuit breaker."
    )
    breaker_reset_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="How long an open breaker refuses calls before one trial call.",
    )
    # --- per-destination breakers (webhooks: tenant-chosen hosts) -----------------
    breaker_max_destinations: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="Breakers per (tenant, scheme, host, port) held in process; the least "
        "recently used is dropped beyond this.",
    )
    breaker_idle_seconds: float = Field(
        default=900.0,
        gt=0,
        le=86_400,
        description="A destination's breaker unused this long is forgotten (never before "
        "breaker_reset_seconds).",
    )
    http_max_response_bytes: int = Field(
        default=16 * 1_048_576,
        ge=1024,
        le=1_073_741_824,
        description="Largest outbound HTTP response read, in bytes.",
    )
    http_pool_limit_per_host: int = Field(
        default=50, ge=1, le=10_000, description="Outbound HTTP connections per destination host."
    )
    internal_base_url: str = Field(
        default="http://xynergy.internal",
        description="Host used for in-process (ASGI) calls; never resolved on a network.",
    )
    # --- transactional outbox and signed webhooks (platform/outbox) -------------
    outbox_poll_seconds: float = Field(
        default=1.0, gt=0, le=300, description="How often the outbox looks for messages due."
    )
    outbox_batch: int = Field(
        default=100, ge=1, le=10_000, description="Messages the outbox claims per poll."
    )
    outbox_concurrency: int = Field(
        default=8, ge=1, le=1000, description="Webhook deliveries in flight at once, per process."
    )
    outbox_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="How long a claimed message is reserved for its process; after a crash "
        "another takes it then.",
    )
    outbox_backoff_base_seconds: float = Field(
        default=1.0,
        gt=0,
        le=3600,
        description="Retry delay of a failed delivery: random, up to this times 2 to the power "
        "of the attempts made (full jitter).",
    )
    outbox_backoff_max_seconds: float = Field(
        default=3600.0,
        gt=0,
        le=86_400,
        description="Cap of the retry delay between delivery attempts.",
    )
    outbox_give_up_after_seconds: float = Field(
        default=7 * 86_400,
        gt=0,
        description="A receiver down longer than this loses nothing silently: the message "
        "stays, marked failed.",
    )
    outbox_webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120, description="Timeout of one webhook delivery."
    )
    outbox_allow_private_addresses: bool = Field(
        default=False,
        description="Deliver webhooks to loopback/private/link-local addresses (tests, "
        "on-premise); off by default so a tenant cannot make the platform call its own network.",
    )

    @model_validator(mode="before")
    @classmethod
    def _secrets_from_files(cls, data: Any) -> Any:
        # XYNERGY_<NAME>_FILE for every secret field: the mounted-secrets convention.
        bound = data.get("secret_file_max_bytes") if isinstance(data, dict) else None
        default_bound = cls.model_fields["secret_file_max_bytes"].default
        return secret_fields_from_files(
            cls, data, env_prefix="XYNERGY_", max_bytes=int(bound or default_bound)
        )

    @field_validator("data_dir")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        # An .env file or a quoted value leaves "~" unexpanded by the shell.
        return value.expanduser()

    @field_validator("cors_origins", "cors_methods", "cors_headers", mode="before")
    @classmethod
    def _parse_list(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_networks(cls, value: Any) -> Any:
        return [ipaddress.ip_network(item, strict=False) for item in _split_csv(value)]

    @field_validator("cors_origins", "cors_methods", "cors_headers")
    @classmethod
    def _no_wildcards(cls, value: list[str]) -> list[str]:
        # A wildcard turns CORS into "any site may call us with the user's browser".
        if any("*" in item for item in value):
            raise ValueError("CORS lists must name exact values; '*' is refused")
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins_are_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if not origin.startswith(("http://", "https://")) or origin.count("/") != 2:
                raise ValueError(f"CORS origin must be scheme://host[:port], got {origin!r}")
        return value

    @field_validator("rate_limits", mode="before")
    @classmethod
    def _parse_rate_limits(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("rate_limits")
    @classmethod
    def _rate_limits_parse(cls, value: dict[str, str]) -> dict[str, str]:
        missing = set(DEFAULT_RATE_LIMITS) - set(value)
        if missing:
            raise ValueError(f"rate_limits is missing route classes: {sorted(missing)}")
        for route_class, limit in value.items():
            try:
                parse_limit(limit)
            except ValueError as exc:
                raise ValueError(f"rate limit for {route_class!r} is invalid: {limit!r}") from exc
        return value

    @field_validator("cache_ttls", mode="before")
    @classmethod
    def _parse_cache_ttls(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("cache_ttls")
    @classmethod
    def _positive_ttls(cls, value: dict[str, float]) -> dict[str, float]:
        bad = sorted(name for name, ttl in value.items() if ttl <= 0)
        if bad:
            raise ValueError(f"cache TTLs must be positive: {bad}")
        return value

    @field_validator("service_urls", mode="before")
    @classmethod
    def _parse_service_urls(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.environment != "production":
            return self
        secret = self.internal_token_secret
        if secret is None or len(secret.get_secret_value()) < MIN_INTERNAL_SECRET_LENGTH:
            raise ValueError(
                "production requires XYNERGY_INTERNAL_TOKEN_SECRET of at least "
                f"{MIN_INTERNAL_SECRET_LENGTH} characters"
            )
        if any(origin.startswith("http://") for origin in self.cors_origins):
            raise ValueError("production CORS origins must use https://")
        return self

    @cached_property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to ``<data_dir>/xynergy.db`` (SQLite)."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'xynergy.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        """Whether the configured database is SQLite."""
        return self.resolved_database_url.startswith("sqlite")


def get_settings(**overrides: Any) -> Settings:
    """Read settings from the environment, with explicit overrides (tests, CLI flags)."""
    return Settings(**overrides)
