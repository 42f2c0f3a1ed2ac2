"""A database's pools, as the settings size them: the engine (sessions for the resolvers and
mutations) and pools of asyncpg connections for single statements that commit on their own
(StatementPool): the fast path's reads, and on the primary, apart, a mutation that is one
statement alone in its operation. The primary's (database.py) and each read replica's
(replicas.py) are made here, alike."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from db.compiled import set_codecs
from db.engine import PGBOUNCER_CONNECT_ARGS, create_engine, server_settings
from db.urls import asyncpg_dsn
from graphql_api.settings import Settings

CLOSE_TIMEOUT_S = 5.0


def engine_for(
    url: str, s: Settings, application_name: str = "graphql-api", pgbouncer: bool = False
) -> AsyncEngine:
    return create_engine(
        url,
        pool_size=s.pool_size,
        max_overflow=s.max_overflow,
        pool_timeout=s.pool_timeout,
        pool_recycle=s.pool_recycle,
        statement_timeout_ms=s.statement_timeout_ms,
        application_name=application_name,
        pgbouncer=pgbouncer,
    )


def statement_pool_for(
    url: str,
    s: Settings,
    application_name: str,
    pgbouncer: bool = False,
    size: int | None = None,
    **options: Any,
) -> StatementPool:
    """Single statements (the fast path's reads; createTask's write) go straight to asyncpg on
    connections of their own: no BEGIN/ROLLBACK around them, no ping (a dead connection is
    retried instead, for reads), and none of the ORM's per-statement machinery. `size`:
    DB_READ_POOL_SIZE unless given."""
    if pgbouncer:  # README, PgBouncer
        options["statement_cache_size"] = PGBOUNCER_CONNECT_ARGS["statement_cache_size"]
    options["server_settings"] = server_settings(
        s.statement_timeout_ms, application_name, pgbouncer
    )
    return StatementPool(asyncpg_dsn(url), size or s.read_pool_size, s.pool_recycle, options)


class StatementPool:
    """`size` connections that each run one statement at a time, opened when first needed, each
    statement committing on its own (the fast path's reads; on the primary, a one-statement
    write too: resolvers/mutation.py).

    asyncpg.Pool does more per use than a single read needs: a task for each release (its
    asyncio.shield), an inactivity timer cancelled and re-armed, a proxy object, a reset call;
    about 20 us of CPU per read under load (15-25 us measured, beside ~18 for the read itself on
    a connection at hand), a tenth of the lightest request. Here taking a connection is a list
    pop and giving it back an append.

    Turns are first come, first served (asyncio.Semaphore lets no newcomer past a waiter: with
    asyncpg's pool, a released connection went to whoever asked next, and the slowest 1% of
    single-task reads were 4x the limit endpoint's). Holding a turn means a connection is idle or
    may be opened, so nothing else waits. A connection older than `recycle_s` is replaced when
    next taken (DB_POOL_RECYCLE, as the engine's pool does). One that failed other than by
    PostgreSQL refusing the statement (cancelled mid-statement, timed out, broken) is never used
    again: it is closed in the background, which lets asyncpg's cancellation of its statement
    reach the server first.
    """

    def __init__(self, dsn: str, size: int, recycle_s: float, options: dict[str, Any]) -> None:
        self._dsn = dsn
        self._options = options
        self._recycle_s = recycle_s
        self._turns = asyncio.Semaphore(size)
        self._idle: list[tuple[asyncpg.Connection, float]] = []  # (connection, opened at), LIFO
        self._open = 0  # idle, in use, or being opened
        self._retiring: set[asyncio.Task[None]] = set()
        self._closed = False

    def get_size(self) -> int:
        return self._open

    def get_idle_size(self) -> int:
        return len(self._idle)

    def waiting(self) -> int:
        """Statements waiting for a turn."""
        return len(getattr(self._turns, "_waiters", None) or ())

    async def fetchval(self, sql: str, *params: Any, timeout_s: float | None = None) -> Any:
        """The one value of `sql`; past `timeout_s` asyncpg cancels it (TimeoutError)."""
        return await self._run(asyncpg.Connection.fetchval, sql, params, timeout_s)

    async def fetch(
        self, sql: str, *params: Any, sending: Callable[[], None] | None = None
    ) -> list[asyncpg.Record]:
        """The rows of `sql`, a statement that commits on its own (a write too), bounded by the
        connection's statement_timeout. `sending` is called with a connection in hand, as the
        statement is sent: waiting for a connection is over by then."""
        rows: list[asyncpg.Record] = await self._run(
            asyncpg.Connection.fetch, sql, params, None, sending
        )
        return rows

    async def _run(
        self,
        method: Any,
        sql: str,
        params: tuple[Any, ...],
        timeout_s: float | None,
        sending: Callable[[], None] | None = None,
    ) -> Any:
        await self._turns.acquire()
        try:
            conn, opened_at = self._take() or await self._connect()
        except BaseException:
            self._turns.release()
            raise
        if sending is not None:
            sending()
        try:
            value = await method(conn, sql, *params, timeout=timeout_s)
        except asyncpg.PostgresError:
            self._give_back(conn, opened_at)  # the server refused the statement, not the link
            raise
        except BaseException:
            self._retire(conn)
            raise
        self._give_back(conn, opened_at)
        return value

    def _take(self) -> tuple[asyncpg.Connection, float] | None:
        while self._idle:
            conn, opened_at = self._idle.pop()
            if not conn.is_closed() and time.monotonic() - opened_at <= self._recycle_s:
                return conn, opened_at
            # Ended while idle (a restart, the network) or too old; no statement runs on it.
            self._open -= 1
            conn.terminate()
        return None

    async def _connect(self) -> tuple[asyncpg.Connection, float]:
        if self._closed:
            raise asyncpg.InterfaceError("the statement pool is closed")
        self._open += 1
        try:
            conn = await asyncpg.connect(self._dsn, **self._options)
        except BaseException:
            self._open -= 1
            raise
        try:
            await set_codecs(conn)  # a row reads as on the engine's connections
        except BaseException:
            self._open -= 1
            conn.terminate()
            raise
        return conn, time.monotonic()

    def _give_back(self, conn: asyncpg.Connection, opened_at: float) -> None:
        if self._closed or conn.is_closed() or conn.is_in_transaction():
            self._retire(conn)
        else:
            self._idle.append((conn, opened_at))
            self._turns.release()

    def _retire(self, conn: asyncpg.Connection, turn: bool = True) -> None:
        """Closes `conn` in the background. Until it is closed it still counts, and its reader's
        turn stays taken: a statement being cancelled still runs in PostgreSQL, and a new
        connection opened beside it would be one more than the size."""
        task = asyncio.get_running_loop().create_task(_close(conn))
        self._retiring.add(task)
        task.add_done_callback(partial(self._retired, turn=turn))

    def _retired(self, task: asyncio.Task[None], turn: bool) -> None:
        self._retiring.discard(task)
        self._open -= 1
        if turn:
            self._turns.release()

    async def close(self) -> None:
        """Closes the idle connections now and the others as they are given back."""
        self._closed = True
        while self._idle:
            self._retire(self._idle.pop()[0], turn=False)
        if self._retiring:
            await asyncio.wait(set(self._retiring))


async def _close(conn: asyncpg.Connection) -> None:
    """Waits for a cancellation asyncpg sent for its statement, then says goodbye; a connection
    that cannot is dropped (asyncpg terminates it)."""
    with contextlib.suppress(Exception):
        await conn.close(timeout=CLOSE_TIMEOUT_S)
