"""The schema extension that tells the request log (and the trace) which operation ran."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import orjson
from strawberry.extensions import SchemaExtension

from graphql_api.observability.request_log import REQUEST_LOG


def observe(tracer: Any | None) -> type[SchemaExtension]:
    """The extension class; with a tracer, each operation is a span named by the operation."""

    class Observe(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            ec = self.execution_context
            with ExitStack() as stack:
                span = None
                if tracer is not None:
                    from graphql_api.observability.tracing import operation_span

                    span = stack.enter_context(operation_span(tracer, None, ec.operation_name))
                yield
                entry = REQUEST_LOG.get()
                kind = _operation_type(ec)
                if span is not None and kind is not None:
                    from graphql_api.observability.tracing import span_name

                    span.update_name(span_name(kind, ec.operation_name))
                    span.set_attribute("graphql.operation.type", kind)
                    if ec.operation_name:
                        span.set_attribute("graphql.operation.name", ec.operation_name)
                if entry is None:  # a WebSocket operation
                    return
                entry.operation_name = ec.operation_name or entry.operation_name
                entry.operation_type = kind or entry.operation_type
                viewer = getattr(ec.context, "viewer_id", None)
                if viewer is not None:
                    entry.viewer_id = str(viewer)
                result = ec.result
                if result is not None and isinstance(result.data, orjson.Fragment):
                    entry.path = "fast"  # compiled by the FastPath extension

    return Observe


def _operation_type(ec: Any) -> str | None:
    try:
        kind = ec.operation_type
    except Exception:  # the document did not parse: there is no operation
        return None
    return str(kind.value)
