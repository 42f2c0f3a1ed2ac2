"""One request's database session, serialised.

Sibling GraphQL fields resolve concurrently, but an AsyncSession must never be used by two tasks at
once: every repository call goes through this lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Executable, Result
from sqlalchemy.ext.asyncio import AsyncSession


class OperationEnded(RuntimeError):
    """The operation this session served has ended (committed or rolled back): a sibling
    field still running when execution stopped early may not use it any more."""


class DbSession:
    ended = False  # set by ending(), for this instance
    autocommitting = False  # set by autocommit(): each statement commits as it runs

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

    async def autocommit(self) -> None:
        """From here on each statement commits on its own (no BEGIN, no COMMIT): only for an
        operation whose writes are one statement, before the session has begun anything."""
        async with self._turn():
            await self.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            self.autocommitting = True

    async def execute_core(self, statement: Executable, params: dict[str, Any]) -> Result[Any]:
        """A Core statement (tables, not ORM entities), built once with bound parameters, on the
        session's connection: no ORM compilation or loading, and SQLAlchemy's compiled cache
        finds it by the statement's memoized key. Writes what is pending first."""
        async with self._turn():
            await self.session.flush()
            connection = await self.session.connection()
            return await connection.execute(statement, params)

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
