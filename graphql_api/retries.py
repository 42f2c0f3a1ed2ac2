"""An operation that PostgreSQL rolled back because it met others (a deadlock, a serialization
failure) runs again, over HTTP and over a WebSocket alike: nothing of it was committed, so the
client need not know. After RETRIES more attempts the client gets CONFLICT."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from contextvars import ContextVar
from typing import Any

from strawberry.types import ExecutionResult

from graphql_api.failures import is_retryable

log = logging.getLogger(__name__)

# How many times an operation that PostgreSQL rolled back for a deadlock or a serialization
# failure runs again before the client gets CONFLICT (nothing of it was committed), each after
# a short random pause, so that it does not meet the same others at the same moment again.
RETRIES = 3
RETRY_PAUSE_S = 0.05


class Attempt:
    """One run of an operation. `committed_apart`: writes were committed apart from its rolled-
    back transaction (its kept writes, unit_of_work): it must not run again."""

    committed_apart = False


ATTEMPT: ContextVar[Attempt | None] = ContextVar("graphql_attempt", default=None)


def note_committed_apart() -> None:
    attempt = ATTEMPT.get()
    if attempt is not None:
        attempt.committed_apart = True


def met_others(result: ExecutionResult) -> bool:
    return any(is_retryable(error.original_error) for error in result.errors or ())


async def retrying(
    run: Callable[[], Awaitable[ExecutionResult]], request_id: str
) -> ExecutionResult:
    """`run()`'s result, run again while PostgreSQL rolled it back for meeting others."""
    for number in itertools.count(1):
        attempt = Attempt()
        token = ATTEMPT.set(attempt)
        try:
            result = await run()
        finally:
            ATTEMPT.reset(token)
        if number > RETRIES or attempt.committed_apart or not met_others(result):
            return result
        log.info("request %s: rolled back by a deadlock; running it again", request_id)
        await asyncio.sleep(random.uniform(0, RETRY_PAUSE_S * number))
    raise AssertionError("unreachable")


class RetryingStreams:
    """A schema whose `stream` (what strawberry's WebSocket handler executes a query or a
    mutation with: one result) runs the operation again as `retrying` does; subscriptions, and
    everything else, are the schema's own."""

    def __init__(self, schema: Any, is_subscription: Callable[[str, str | None], bool]) -> None:
        self._schema = schema
        self._is_subscription = is_subscription

    def __getattr__(self, name: str) -> Any:
        return getattr(self._schema, name)

    async def stream(self, query: str, **kwargs: Any) -> AsyncIterator[Any]:
        if self._is_subscription(query, kwargs.get("operation_name")):
            source: AsyncIterator[Any] = await self._schema.stream(query, **kwargs)
            return source
        context = kwargs.get("context_value")
        request_id = getattr(context, "request_id", "")
        results: list[Any] = []

        async def run() -> ExecutionResult:
            results.clear()
            source = await self._schema.stream(query, **kwargs)
            async with aclosing(source):
                results.extend([r async for r in source])
            single = results[0] if len(results) == 1 else None
            return single if isinstance(single, ExecutionResult) else ExecutionResult(None, None)

        await retrying(run, request_id)
        return _replay(results)


async def _replay(results: list[Any]) -> AsyncGenerator[Any, None]:
    for result in results:
        yield result
