"""Counting each request's SQL statements (for its log line and the metrics)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from graphql_api.observability.request_log import note_statement


def _before_cursor_execute(*args: Any) -> None:
    note_statement()


def count_engine_statements(engine: AsyncEngine) -> Callable[[], None]:
    """Every statement the engine sends counts for the request that sent it (savepoints and
    rate-limit reservations included). Returns the undo."""
    event.listen(engine.sync_engine, "before_cursor_execute", _before_cursor_execute)
    return lambda: event.remove(engine.sync_engine, "before_cursor_execute", _before_cursor_execute)


Run = TypeVar("Run", bound=Callable[..., Awaitable[Any]])


def counted(run: Run) -> Run:
    """`run` (a statement as SQL text, then its parameters), counted: the single statements
    that do not go through the engine (the fast path's reads, one-statement writes)."""

    @functools.wraps(run)
    async def counting(sql: str, *params: Any, **options: Any) -> Any:
        note_statement()
        return await run(sql, *params, **options)

    return cast(Run, counting)
