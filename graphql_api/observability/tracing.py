"""OpenTelemetry traces, set up only when OTEL_EXPORTER_OTLP_ENDPOINT is set (this module, and
the SDK, are not even imported otherwise).

Spans: the HTTP request (the ASGI instrumentation's server span, continuing a W3C `traceparent`),
the GraphQL operation under it (named by the operation), and each SQL statement under that (the
asyncpg instrumentation: the engine's statements and the fast path's reads alike).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.trace import Tracer, TracerProvider
from starlette.middleware import Middleware

from graphql_api.settings import Settings

TRACER_NAME = "graphql_api"


def provider_from_settings(settings: Settings) -> TracerProvider:
    """An SDK provider exporting by OTLP over HTTP; the exporter reads the standard OTEL_*
    variables (endpoint, headers, timeout) itself."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = SdkTracerProvider(
        resource=Resource.create({"service.name": settings.otel_service_name})
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


class Tracing:
    def __init__(self, provider: TracerProvider, *, owned: bool) -> None:
        self.provider = provider
        self.owned = owned
        self.tracer: Tracer = provider.get_tracer(TRACER_NAME)
        self._instrumentor = AsyncPGInstrumentor()  # type: ignore[no-untyped-call]

    def middleware(self) -> Middleware:
        return Middleware(
            OpenTelemetryMiddleware,
            tracer_provider=self.provider,
            excluded_urls="/healthz,/readyz,/metrics",
            exclude_spans=["receive", "send"],
        )

    def start(self) -> None:
        if not self._instrumentor.is_instrumented_by_opentelemetry:
            self._instrumentor.instrument(tracer_provider=self.provider)

    def stop(self) -> None:
        if self._instrumentor.is_instrumented_by_opentelemetry:
            self._instrumentor.uninstrument()
        if self.owned:
            shutdown = getattr(self.provider, "shutdown", None)
            if shutdown is not None:
                shutdown()  # exports what is still buffered


def span_name(operation_type: str | None, operation_name: str | None) -> str:
    return operation_name or operation_type or "GraphQL operation"


@contextmanager
def operation_span(
    tracer: Tracer, operation_type: str | None, operation_name: str | None
) -> Iterator[Any]:
    with tracer.start_as_current_span(span_name(operation_type, operation_name)) as span:
        if operation_type:
            span.set_attribute("graphql.operation.type", operation_type)
        if operation_name:
            span.set_attribute("graphql.operation.name", operation_name)
        yield span
