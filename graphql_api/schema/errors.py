"""Shaping top-level errors: every one gets a stable `extensions.code`; unexpected ones are
logged with the request id and, in production, masked; in production no message suggests names
("Did you mean ...?"), which would let a client rebuild the schema without introspection.
Applied to every result the HTTP view sends (GraphQLApp.process_result), including errors raised
before execution (parse errors), and to every result streamed over a WebSocket (Schema.stream)."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError

from db.errors import DomainError
from graphql_api.errors import TOP_LEVEL_CODES
from graphql_api.failures import INTERNAL, classify

log = logging.getLogger("graphql_api.errors")


# graphql-core's did_you_mean(): " Did you mean 'A', 'B', or 'C'?", also "Did you mean the enum
# value 'A'?" and "Did you mean to use an inline fragment on 'A'?", in validation rules, literal
# and variable coercion alike. Names never contain "?".
SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


def shape_errors(
    errors: list[GraphQLError], request_id: str, production: bool
) -> list[GraphQLError]:
    return [shape(error, request_id, production) for error in errors]


def shape(error: GraphQLError, request_id: str, production: bool) -> GraphQLError:
    shaped = _with_code(error, request_id, production)
    if production and "Did you mean" in shaped.message:
        return _copy(shaped, SUGGESTION.sub("", shaped.message), {})
    return shaped


async def shape_stream(
    results: AsyncGenerator[Any, None], request_id: str, production: bool
) -> AsyncGenerator[Any, None]:
    """`shape_errors` over the results of a stream. A syntax error passes as it is: the
    graphql-transport-ws handler closes the socket with it."""
    try:
        async with aclosing(results):
            async for result in results:
                if (
                    isinstance(result, ExecutionResult)
                    and result.errors
                    and not isinstance(result.errors[0], GraphQLSyntaxError)
                ):
                    result.errors = shape_errors(result.errors, request_id, production)
                yield result
    except Exception as exc:
        # Raised between events (the database went away, a bug): the client gets the error with
        # its code, where strawberry would only have sent `complete`.
        yield ExecutionResult(data=None, errors=shape_errors([_wrap(exc)], request_id, production))


async def raised_before_execution(exc: Exception) -> AsyncGenerator[Any, None]:
    """A stream of one error, for what an extension raised before execution (a refused
    document, an unreachable database): sent as graphql-transport-ws's `error` message."""
    yield PreExecutionError(data=None, errors=[_wrap(exc)])


def _wrap(exc: Exception) -> GraphQLError:
    return exc if isinstance(exc, GraphQLError) else GraphQLError(str(exc), original_error=exc)


def _with_code(error: GraphQLError, request_id: str, production: bool) -> GraphQLError:
    """Every error leaves with a code and the request's id (also in the log and X-Request-ID)."""
    original = error.original_error
    ids: dict[str, object] = {"requestId": request_id}
    if isinstance(original, DomainError):
        return _copy(error, original.message, {"code": TOP_LEVEL_CODES[original.code], **ids})
    if error.extensions and "code" in error.extensions:
        return _copy(error, error.message, ids)
    failure = classify(original)
    if failure is not None:
        log.warning("%s (request %s) at %s: %r", failure.code, request_id, error.path, original)
        return _copy(error, failure.message, {"code": failure.code, **ids})
    if original is None or isinstance(original, GraphQLError):
        # Syntax, validation and variable errors: the request itself is at fault.
        return _copy(error, error.message, {"code": "BAD_REQUEST", **ids})
    log.error("unexpected error (request %s) at %s", request_id, error.path, exc_info=original)
    message = INTERNAL.message if production else f"{type(original).__name__}: {original}"
    return _copy(error, message, {"code": "INTERNAL", **ids})


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
