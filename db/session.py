"""One request's database session, serialised.

Sibling GraphQL fields resolve concurrently, but an AsyncSession must never be used by two tasks at
once: every repository call goes through this lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

import asyncpg
from sqlalchemy import Executable, Result
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from db.compiled import compiled


class Statements(Protocol):
    """Connections that run single statements, each committing on its own; `sending` is called
    with a connection in hand, as the statement is sent."""

    async def fetch(
        self, sql: str, *params: Any, sending: Callable[[], None] | None = None
    ) -> list[Any]: ...


class OperationEnded(RuntimeError):
    """The operation this session served has ended (committed or rolled back): a sibling
    field still running when execution stopped early may not use it any more."""


class DbSession:
    ended = False  # set by ending(), for this instance
    statements: Statements | None = None  # set by autocommit()
    committing: Callable[[], None] | None = None  # set by autocommit()

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.lock = asyncio.Lock()

    @asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        """The session, to this task alone, while the operation lasts."""
        async with self.lock:
            if self.ended:
                raise OperationEnded("the operation this session served has ended")
            yield

    @asynccontextmanager
    async def ending(self) -> AsyncIterator[None]:
        """For the unit of work: waits for a statement in flight (a sibling field that was still
        running when execution stopped early), then ends the session's use by fields."""
        async with self.lock:
            self.ended = True
            yield

    async def execute(self, statement: Executable, params: Any = None) -> Result[Any]:
        async with self._turn():
            return await self.session.execute(statement, params)

    async def scalars(self, statement: Executable, params: Any = None) -> Sequence[Any]:
        async with self._turn():
            return (await self.session.scalars(statement, params)).all()

    async def scalar(self, statement: Executable, params: Any = None) -> Any:
        async with self._turn():
            return await self.session.scalar(statement, params)

    def autocommit(self, connections: Statements, committing: Callable[[], None]) -> None:
        """From here on the statements of `run` commit each on its own (no BEGIN, no COMMIT), on
        `connections`: only for an operation whose writes are one statement, before the session
        has begun anything. `committing` is called as a write is sent (from then on it may
        commit whatever happens to the request)."""
        self.statements, self.committing = connections, committing

    async def run(
        self, statement: Executable, params: dict[str, Any], *, writes: bool = False
    ) -> list[dict[str, Any]]:
        """The rows of a Core statement built once with bound parameters (db/compiled.py), as
        SQL text: on a connection of `autocommit`'s, committing on its own, or on the session's
        connection, in its transaction, after writing what is pending. `writes`: it changes
        data (autocommit's `committing` is called as it is sent)."""
        dialect = self.session.get_bind().dialect
        query = compiled(statement, dialect)
        args = query.args(params)
        if self.statements is not None:
            sending = self.committing if writes else None
            try:
                records: Sequence[Sequence[Any]] = await self.statements.fetch(
                    query.sql, *args, sending=sending
                )
            except asyncpg.IntegrityConstraintViolationError as exc:  # as SQLAlchemy raises it
                raise IntegrityError(query.sql, args, exc) from exc
        else:
            async with self._turn():
                await self.session.flush()
                connection = await self.session.connection()
                records = (await connection.exec_driver_sql(query.sql, args)).all()
        return [query.row(record) for record in records]

    async def scalar_sql(self, sql: str, params: Sequence[Any]) -> Any:
        """The one value of a statement given as SQL text with $1, $2... parameters (a compiled
        one), after writing what is pending: it reads the request's own writes."""
        async with self._turn():
            await self.session.flush()
            connection = await self.session.connection()
            return (await connection.exec_driver_sql(sql, tuple(params))).scalar_one()

    async def flush(self, objects: Sequence[Any] | None = None) -> None:
        async with self._turn():
            await self.session.flush(objects)

    def add(self, obj: Any) -> None:
        self.session.add(obj)
