"""One Settings object, read from the environment when asked (never at import)."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from db.urls import normalise_database_url, redacted, without_pgbouncer_flag

DEV_SECRET = "dev-insecure-secret-key-not-for-production"
PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret", DEV_SECRET})
ENVIRONMENTS = ("development", "production")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("text", "json")
TRUSTED_DOCUMENTS = ("off", "only")


class SettingsError(ValueError):
    """A setting has a value the server cannot run with; the message names it."""


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    # Streaming replicas for queries (README, Read replicas).
    database_read_urls: tuple[str, ...] = ()
    replica_max_lag_s: float = 5.0
    read_your_writes_s: float = 10.0
    embedded_data_dir: Path | None = None
    pool_size: int = 10
    max_overflow: int = 10
    # The compiled single-statement reads are CPU-bound in PostgreSQL: a few connections per
    # worker keep its cores busy, more only make its backends and the workers fight for them.
    read_pool_size: int = 4
    pool_timeout: float = 10.0
    pool_recycle: int = 1800
    statement_timeout_ms: int = 5000
    environment: str = "development"
    secret_key: str = DEV_SECRET
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 30 * 24 * 3600
    login_max_failures: int = 5
    login_max_failures_per_ip: int = 50
    login_max_failures_per_account: int = 100
    login_window_s: int = 900
    fast_path: bool = True
    # Protections against hostile clients (README, Security).
    max_depth: int = 15
    max_aliases: int = 30
    max_fragment_spreads: int = 100
    max_directives: int = 50
    max_tokens: int = 2000
    max_document_chars: int = 20_000
    max_body_bytes: int = 1024 * 1024
    batching: bool = False
    max_batch: int = 10
    max_nodes: int = 50_000
    rate_limit_points: int = 5000
    rate_limit_window_s: int = 3600
    request_timeout_s: float = 15.0
    # On SIGTERM: stop accepting, let requests in flight finish for at most this long.
    shutdown_timeout_s: int = 20
    introspection: bool | None = None  # None: on in development, off in production
    graphiql: bool | None = None  # likewise
    cors_origins: tuple[str, ...] = ()
    # Live updates over WebSocket (graphql-transport-ws).
    ws_max_subscriptions: int = 20
    ws_max_connections_per_user: int = 10
    ws_init_timeout_s: float = 10.0
    ws_ping_interval_s: float = 15.0
    legacy_graphql_ws: bool = False
    # How long a mutation's Idempotency-Key answers retries with the first outcome.
    idempotency_key_ttl_s: int = 86_400
    # Persisted documents (README, Persisted documents): how many APQ-registered documents the
    # table keeps (least recently used evicted first), and whether only trusted ones are run.
    apq_max_documents: int = 10_000
    trusted_documents: str = "off"
    # Behind PgBouncer in transaction mode (README, PgBouncer): no prepared statements kept,
    # timeouts per transaction; LISTEN and migrations need a session, so they take the direct URL.
    pgbouncer: bool = False
    database_direct_url: str | None = None
    # Proxies whose X-Forwarded-For is believed (uvicorn's forwarded_allow_ips); None: none.
    forwarded_allow_ips: str | None = None
    # Observability (README, Observability).
    metrics: bool | None = None  # None: on in development, off in production
    metrics_token: str | None = None  # when set, /metrics needs "Authorization: Bearer <it>"
    log_format: str | None = None  # None: json in production, text in development
    otel_endpoint: str | None = None  # tracing is set up only when this is set
    otel_service_name: str = "graphql-api"

    @property
    def introspection_enabled(self) -> bool:
        return (not self.is_production) if self.introspection is None else self.introspection

    @property
    def graphiql_enabled(self) -> bool:
        return (not self.is_production) if self.graphiql is None else self.graphiql

    @property
    def metrics_enabled(self) -> bool:
        return (not self.is_production) if self.metrics is None else self.metrics

    @property
    def log_format_in_force(self) -> str:
        if self.log_format is not None:
            return self.log_format
        return "json" if self.is_production else "text"

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    def describe(self) -> str:
        """Every setting for the log, the secret left out and the URL's password hidden."""
        secrets = ("secret_key", "metrics_token")
        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in secrets}
        for name in ("database_url", "database_direct_url"):
            if shown[name] is not None:
                shown[name] = redacted(shown[name])
        shown["database_read_urls"] = tuple(redacted(u) for u in self.database_read_urls)
        return ", ".join(f"{name}={value}" for name, value in shown.items())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        url = env.get("DATABASE_URL", "").strip()
        if url:
            url, behind_pgbouncer = without_pgbouncer_flag(url)
            values["database_url"] = normalise_database_url(url)
            if behind_pgbouncer:
                values["pgbouncer"] = True
        if direct := env.get("DATABASE_DIRECT_URL", "").strip():
            values["database_direct_url"] = normalise_database_url(direct, "DATABASE_DIRECT_URL")
        if proxies := env.get("FORWARDED_ALLOW_IPS", "").strip():
            values["forwarded_allow_ips"] = _parse_proxies(proxies)
        if read_urls := env.get("DATABASE_READ_URL", "").strip():
            values["database_read_urls"] = tuple(
                normalise_database_url(u, "DATABASE_READ_URL")
                for u in read_urls.split(",")
                if u.strip()
            )
        if data_dir := env.get("GRAPHQL_API_DATA_DIR", "").strip():
            values["embedded_data_dir"] = Path(data_dir).expanduser()
        for name, key, kind in _NUMERIC:
            raw = env.get(name)
            if raw is not None and raw.strip():
                values[key] = _parse_number(name, raw, kind)
        values["environment"] = env.get("ENVIRONMENT", "development").strip().lower()
        values["secret_key"] = env.get("SECRET_KEY", DEV_SECRET)
        values["host"] = env.get("HOST", "127.0.0.1").strip()
        values["log_level"] = env.get("LOG_LEVEL", "info").strip().lower()
        for name, key in _SWITCHES:
            raw = env.get(name)
            if raw is not None and raw.strip():
                values[key] = _parse_switch(name, raw)
        if log_format := env.get("LOG_FORMAT", "").strip().lower():
            values["log_format"] = log_format
        if trusted := env.get("TRUSTED_DOCUMENTS", "").strip().lower():
            values["trusted_documents"] = trusted
        if token := env.get("METRICS_TOKEN", "").strip():
            values["metrics_token"] = token
        # The standard OpenTelemetry variables (the SDK's exporter reads the others itself).
        if endpoint := env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip():
            values["otel_endpoint"] = endpoint
        if service := env.get("OTEL_SERVICE_NAME", "").strip():
            values["otel_service_name"] = service
        if origins := env.get("CORS_ORIGINS", "").strip():
            values["cors_origins"] = _parse_origins(origins)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.environment not in ENVIRONMENTS:
            raise SettingsError(f"ENVIRONMENT must be one of {', '.join(ENVIRONMENTS)}")
        if self.log_level not in LOG_LEVELS:
            raise SettingsError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
        if self.log_format is not None and self.log_format not in LOG_FORMATS:
            raise SettingsError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}")
        if self.is_production and (
            self.secret_key.strip().lower() in PLACEHOLDER_SECRETS or len(self.secret_key) < 32
        ):
            raise SettingsError(
                "SECRET_KEY must be set to a random value of at least 32 characters in production"
            )
        if (
            self.pool_size < 1
            or self.read_pool_size < 1
            or self.max_overflow < 0
            or self.pool_timeout <= 0
        ):
            raise SettingsError(
                "DB_POOL_SIZE and DB_READ_POOL_SIZE must be >= 1, DB_MAX_OVERFLOW >= 0, timeout > 0"
            )
        if not 0 < self.port < 65536:
            raise SettingsError("PORT must be between 1 and 65535")
        if self.replica_max_lag_s <= 0 or self.read_your_writes_s < self.replica_max_lag_s:
            # A viewer's write is forgotten only once any replica still in use has replayed it.
            raise SettingsError(
                "DB_REPLICA_MAX_LAG_SECONDS must be > 0, "
                "and DB_READ_YOUR_WRITES_SECONDS at least as long"
            )
        if self.trusted_documents not in TRUSTED_DOCUMENTS:
            raise SettingsError(f"TRUSTED_DOCUMENTS must be one of {', '.join(TRUSTED_DOCUMENTS)}")
        if self.apq_max_documents < 0:
            raise SettingsError("APQ_MAX_DOCUMENTS must be >= 0")
        if self.idempotency_key_ttl_s < 1:
            raise SettingsError("IDEMPOTENCY_KEY_TTL_SECONDS must be at least 1")


_NUMERIC: tuple[tuple[str, str, type], ...] = (
    ("DB_POOL_SIZE", "pool_size", int),
    ("DB_MAX_OVERFLOW", "max_overflow", int),
    ("DB_READ_POOL_SIZE", "read_pool_size", int),
    ("DB_POOL_TIMEOUT", "pool_timeout", float),
    ("DB_POOL_RECYCLE", "pool_recycle", int),
    ("DB_STATEMENT_TIMEOUT_MS", "statement_timeout_ms", int),
    ("PORT", "port", int),
    ("ACCESS_TOKEN_TTL_SECONDS", "access_token_ttl_s", int),
    ("REFRESH_TOKEN_TTL_SECONDS", "refresh_token_ttl_s", int),
    ("LOGIN_MAX_FAILURES", "login_max_failures", int),
    ("LOGIN_MAX_FAILURES_PER_IP", "login_max_failures_per_ip", int),
    ("LOGIN_MAX_FAILURES_PER_ACCOUNT", "login_max_failures_per_account", int),
    ("LOGIN_WINDOW_SECONDS", "login_window_s", int),
    ("MAX_QUERY_DEPTH", "max_depth", int),
    ("MAX_ALIASES", "max_aliases", int),
    ("MAX_FRAGMENT_SPREADS", "max_fragment_spreads", int),
    ("MAX_DIRECTIVES", "max_directives", int),
    ("MAX_TOKENS", "max_tokens", int),
    ("MAX_DOCUMENT_CHARS", "max_document_chars", int),
    ("MAX_BODY_BYTES", "max_body_bytes", int),
    ("MAX_BATCH", "max_batch", int),
    ("MAX_NODES", "max_nodes", int),
    ("RATE_LIMIT_POINTS", "rate_limit_points", int),
    ("RATE_LIMIT_WINDOW_SECONDS", "rate_limit_window_s", int),
    ("REQUEST_TIMEOUT_SECONDS", "request_timeout_s", float),
    ("SHUTDOWN_TIMEOUT_SECONDS", "shutdown_timeout_s", int),
    ("WS_MAX_SUBSCRIPTIONS", "ws_max_subscriptions", int),
    ("WS_MAX_CONNECTIONS_PER_USER", "ws_max_connections_per_user", int),
    ("WS_INIT_TIMEOUT_SECONDS", "ws_init_timeout_s", float),
    ("WS_PING_INTERVAL_SECONDS", "ws_ping_interval_s", float),
    ("IDEMPOTENCY_KEY_TTL_SECONDS", "idempotency_key_ttl_s", int),
    ("APQ_MAX_DOCUMENTS", "apq_max_documents", int),
    ("DB_REPLICA_MAX_LAG_SECONDS", "replica_max_lag_s", float),
    ("DB_READ_YOUR_WRITES_SECONDS", "read_your_writes_s", float),
)
_SWITCHES = (
    ("FAST_PATH", "fast_path"),
    ("BATCHING", "batching"),
    ("INTROSPECTION", "introspection"),
    ("GRAPHIQL", "graphiql"),
    ("LEGACY_GRAPHQL_WS", "legacy_graphql_ws"),
    ("DB_PGBOUNCER", "pgbouncer"),
    ("METRICS", "metrics"),
)
_ON = ("1", "on", "true", "yes")
_OFF = ("0", "off", "false", "no")


def _parse_switch(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _ON:
        return True
    if value in _OFF:
        return False
    raise SettingsError(f"{name} must be on or off, got {raw!r}")


def _parse_origins(raw: str) -> tuple[str, ...]:
    """`https://app.example.com,http://localhost:5173`, or `*` for any origin."""
    origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    for origin in origins:
        if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
            raise SettingsError(
                f"CORS_ORIGINS must be comma-separated origins like https://app.example.com, "
                f"got {origin!r}"
            )
    return origins


def _parse_proxies(raw: str) -> str:
    """uvicorn's form: comma-separated addresses or networks, or `*` for any proxy."""
    items = [item.strip() for item in raw.split(",") if item.strip()]
    for item in items:
        if item == "*" or item.startswith("unix:"):
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise SettingsError(
                f"FORWARDED_ALLOW_IPS must be comma-separated addresses or networks "
                f"(e.g. 10.0.0.0/8,127.0.0.1) or *, got {item!r}"
            ) from None
    return ",".join(items)


def _parse_number(name: str, raw: str, kind: type) -> int | float:
    try:
        value: int | float = kind(raw.strip())
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    return value
