"""Shaping top-level errors: every one gets a stable `extensions.code`; unexpected ones are
logged with the request id and, in production, masked."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from db.errors import DomainError
from graphql_api.errors import TOP_LEVEL_CODES

log = logging.getLogger("graphql_api.errors")


class ErrorShaping(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None or not result.errors:
            return
        ctx = self.execution_context.context
        result.errors = [self._shape(error, ctx) for error in result.errors]

    def _shape(self, error: GraphQLError, ctx: object) -> GraphQLError:
        original = error.original_error
        request_id = getattr(ctx, "request_id", None)
        if isinstance(original, DomainError):
            return _copy(error, original.message, {"code": TOP_LEVEL_CODES[original.code]})
        if error.extensions and "code" in error.extensions:
            return error
        if original is None or isinstance(original, GraphQLError):
            # Syntax, validation and variable errors: the request itself is at fault.
            return _copy(error, error.message, {"code": "BAD_REQUEST"})
        log.error("unexpected error (request %s) at %s", request_id, error.path, exc_info=original)
        production = getattr(getattr(ctx, "settings", None), "is_production", True)
        message = (
            "Internal server error" if production else f"{type(original).__name__}: {original}"
        )
        return _copy(error, message, {"code": "INTERNAL", "requestId": request_id})


def _copy(error: GraphQLError, message: str, extensions: dict[str, object]) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error,
        extensions={**(error.extensions or {}), **extensions},
    )
