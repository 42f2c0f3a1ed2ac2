"""Counting each request's SQL statements (for its log line and the metrics)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from graphql_api.observability.request_log import note_statement

ReadScalar = Callable[[str, tuple[Any, ...]], Awaitable[Any]]


def _before_cursor_execute(*args: Any) -> None:
    note_statement()


def count_engine_statements(engine: AsyncEngine) -> Callable[[], None]:
    """Every statement the engine sends counts for the request that sent it (savepoints and
    rate-limit reservations included). Returns the undo."""
    event.listen(engine.sync_engine, "before_cursor_execute", _before_cursor_execute)
    return lambda: event.remove(engine.sync_engine, "before_cursor_execute", _before_cursor_execute)


def counted_reads(read_scalar: ReadScalar) -> ReadScalar:
    """The fast path's single statements, which do not go through the engine."""

    async def read(sql: str, params: tuple[Any, ...]) -> Any:
        note_statement()
        return await read_scalar(sql, params)

    return read
