"""Prometheus metrics (prometheus-client), served at /metrics.

With several worker processes (`serve --workers N`) the CLI points PROMETHEUS_MULTIPROC_DIR at a
directory of its own before the workers start: each process writes its samples to files there,
and whichever worker answers a scrape sums them all (prometheus-client's multiprocess mode).
Gauges of things a process holds (connections, subscribers) are summed over the live processes.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response

from graphql_api.observability.request_log import RequestLog

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter(
    "graphql_requests_total",
    "GraphQL HTTP requests, by operation and outcome (ok or the first error code).",
    ["operation_type", "operation_name", "code", "path"],
)
DURATION = Histogram(
    "graphql_request_duration_seconds",
    "Time from a request's arrival at /graphql to the end of its response.",
    ["operation_type", "operation_name", "path"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15),
)
SQL_STATEMENTS = Histogram(
    "graphql_request_sql_statements",
    "SQL statements a request sent to PostgreSQL.",
    ["operation_type", "path"],
    buckets=(0, 1, 2, 3, 4, 6, 8, 12, 16, 32, 64),
)
POOL_IN_USE = Gauge(
    "graphql_db_pool_connections_in_use",
    "Connections checked out of a pool (engine: mutations and resolvers; read: fast path;"
    " write: one-statement writes alone in their operation).",
    ["pool"],
    multiprocess_mode="livesum",
)
POOL_WAITING = Gauge(
    "graphql_db_pool_waiting",
    "Requests waiting for a connection of a pool.",
    ["pool"],
    multiprocess_mode="livesum",
)
RATE_LIMITED = Counter("graphql_rate_limited_total", "Operations refused by the rate limit.")
WS_CONNECTIONS = Gauge(
    "graphql_websocket_connections", "Open WebSocket connections.", multiprocess_mode="livesum"
)
SUBSCRIBERS = Gauge(
    "graphql_subscribers", "Active task-event subscriptions.", multiprocess_mode="livesum"
)
EVENTS_DELIVERED = Counter("graphql_events_delivered_total", "Task events queued for a subscriber.")
EVENT_EXECUTIONS = Counter(
    "graphql_event_executions_total",
    "Task-event payloads executed for a group of subscribers that get the same one.",
)
EVENT_PROJECTIONS = Counter(
    "graphql_event_projections_total",
    "Task-event payloads written straight from the loaded rows, without executing, for a group "
    "of subscribers that get the same one.",
)
EVENTS_DROPPED = Counter(
    "graphql_events_dropped_total",
    "Task events not delivered because their subscriber was too slow (and was dropped).",
)
LISTENER_RECONNECTS = Counter(
    "graphql_event_listener_reconnects_total",
    "Times the LISTEN connection for task events was lost and reopened.",
)

MAX_OPERATION_NAMES = 100
OTHER = "other"
_names: set[str] = set()


def bounded_name(name: str | None) -> str:
    """The operation name as a label: the first MAX_OPERATION_NAMES distinct names this process
    sees keep theirs, later ones are "other" (a client cannot grow the series without bound);
    anonymous operations are ""."""
    if not name:
        return ""
    if name in _names:
        return name
    if len(_names) < MAX_OPERATION_NAMES:
        _names.add(name)
        return name
    return OTHER


def record_request(entry: RequestLog, duration_s: float) -> None:
    kind = entry.operation_type or ""
    name = bounded_name(entry.operation_name)
    REQUESTS.labels(kind, name, entry.outcome or "ok", entry.path).inc()
    DURATION.labels(kind, name, entry.path).observe(duration_s)
    SQL_STATEMENTS.labels(kind, entry.path).observe(entry.sql_statements)


class PoolWatch:
    """Samples the pools of a Database (at each request's end and at each scrape)."""

    def __init__(self, database: Any) -> None:
        self.database = database
        self.engine_waiting = 0
        self._watched: Any = None
        self._sampled = 0.0

    def watch_engine(self) -> None:
        """Counts the callers inside the engine pool's get (waiting for, or opening, a
        connection): SQLAlchemy has no event before a checkout."""
        engine = self.database.engine
        pool = getattr(engine, "pool", None)
        if pool is None or pool is self._watched or not hasattr(pool, "_do_get"):
            return
        original = pool._do_get

        def counted_get() -> Any:
            self.engine_waiting += 1
            try:
                return original()
            finally:
                self.engine_waiting -= 1

        pool._do_get = counted_get
        self._watched = pool

    def sample_now_and_then(self) -> None:
        """At most every 100 ms: fresh enough for a gauge, and off the per-request cost."""
        now = time.monotonic()
        if now - self._sampled >= 0.1:
            self._sampled = now
            self.sample()

    def sample(self) -> None:
        db = self.database
        pool = getattr(db.engine, "pool", None)
        checkedout = getattr(pool, "checkedout", None)
        if callable(checkedout):
            POOL_IN_USE.labels("engine").set(checkedout())
            POOL_WAITING.labels("engine").set(self.engine_waiting)
        for kind in ("read", "write"):
            pool = getattr(db, f"{kind}_pool", None)
            if pool is not None:
                POOL_IN_USE.labels(kind).set(pool.get_size() - pool.get_idle_size())
                POOL_WAITING.labels(kind).set(pool.waiting())


def _exposition() -> bytes:
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def metrics_endpoint(token: str | None, pools: PoolWatch) -> Any:
    expected = f"Bearer {token}".encode() if token else None

    async def metrics(request: Request) -> Response:
        if expected is not None:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return Response(
                    "metrics need Authorization: Bearer <METRICS_TOKEN>\n",
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                )
        pools.sample()
        body = await asyncio.to_thread(_exposition)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return metrics


def process_exited() -> None:
    """A worker's shutdown: its live gauges leave the sums."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
