"""What happens when a request to /graphql ends: its metrics and its access-log line."""

from __future__ import annotations

from typing import Any

from graphql_api.logs import log_access
from graphql_api.observability.request_log import RequestLog


class Observer:
    def __init__(self, *, metrics: bool, pools: Any | None = None, tracer: Any | None = None):
        self.metrics = metrics
        self.pools = pools  # a metrics.PoolWatch when metrics are on
        self.tracer = tracer  # an OpenTelemetry tracer when tracing is on

    def finished(self, entry: RequestLog) -> None:
        duration = entry.duration_s
        if self.metrics:
            from graphql_api.observability.metrics import record_request

            record_request(entry, duration)
            if self.pools is not None:
                self.pools.sample_now_and_then()
        log_access(entry, duration)
