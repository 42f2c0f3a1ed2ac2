"""The fast path's connections (graphql_api.pools.StatementPool) against a real PostgreSQL, seen from
pg_stat_activity: how many there are, which backend ran a read, and that a statement cancelled
in the middle stops in PostgreSQL too, not only in Python."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest

from db.urls import asyncpg_dsn
from graphql_api.database import Database
from graphql_api.failures import UNAVAILABLE, classify
from graphql_api.pools import StatementPool, statement_pool_for
from tests.conftest import make_settings

PID = "SELECT pg_backend_pid()"
SLEEP = "SELECT pg_backend_pid() FROM pg_sleep(60)"  # never finishes within a test


@asynccontextmanager
async def read_pool(url: str, **settings: Any) -> AsyncIterator[tuple[StatementPool, str]]:
    """A pool of its own application name (so pg_stat_activity tells its backends apart)."""
    name = f"test-read-{uuid.uuid4().hex[:8]}"
    pool = statement_pool_for(url, make_settings(database_url=url, **settings), name)
    try:
        yield pool, name
    finally:
        await pool.close()


async def admin_fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    """`sql`'s rows, on a connection of its own (not one of the pool under test)."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def backends(url: str, name: str) -> list[asyncpg.Record]:
    return await admin_fetch(
        url,
        "SELECT pid, state, query FROM pg_stat_activity WHERE application_name = $1",
        name,
    )


async def eventually(check: Callable[[], Awaitable[bool]], what: str, within: float = 15) -> None:
    """Waits (`within` s at most) for what happens on its own time: a backend's exit."""
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def sleeping(url: str, name: str) -> int:
    """How many of the pool's backends are running a pg_sleep."""
    return sum(
        "pg_sleep" in row["query"] and row["state"] == "active" for row in await backends(url, name)
    )


async def test_reads_share_at_most_size_connections(database_url: str) -> None:
    async with read_pool(database_url, read_pool_size=3) as (pool, name):
        pids = await asyncio.gather(
            *(pool.fetchval("SELECT pg_backend_pid() FROM pg_sleep(0.01)") for _ in range(40))
        )
        assert 1 <= len(set(pids)) <= 3
        assert pool.get_size() == pool.get_idle_size() == len(set(pids))
        assert {row["pid"] for row in await backends(database_url, name)} == set(pids)
        # Later reads reuse them: no connection per read.
        assert {await pool.fetchval(PID) for _ in range(10)} <= set(pids)
        assert pool.get_size() == len(set(pids))


async def test_turns_are_first_come_first_served(database_url: str) -> None:
    async with read_pool(database_url, read_pool_size=1) as (pool, _):
        answered: list[int] = []

        async def read(n: int) -> None:
            answered.append(await pool.fetchval("SELECT $1::int FROM pg_sleep(0.002)", n))

        first = [asyncio.create_task(read(n)) for n in range(10)]
        await asyncio.sleep(0)
        assert pool.waiting() == 9  # one reads, nine wait
        later = [asyncio.create_task(read(n)) for n in range(10, 20)]  # newcomers queue behind
        await asyncio.gather(*first, *later)
        assert answered == list(range(20))
        assert pool.waiting() == 0


async def test_a_refused_statement_keeps_its_connection(database_url: str) -> None:
    async with read_pool(database_url, read_pool_size=1) as (pool, _):
        pid = await pool.fetchval(PID)
        with pytest.raises(asyncpg.DivisionByZeroError):
            await pool.fetchval("SELECT 1 / 0")
        assert await pool.fetchval(PID) == pid
        assert pool.get_size() == 1


@pytest.mark.parametrize("how", ["cancelled", "timeout_s"])
async def test_a_statement_stopped_midway_stops_in_postgresql(database_url: str, how: str) -> None:
    """Cancelled (the request's deadline, a shutdown) or past its own timeout: the statement is
    cancelled in PostgreSQL too (a connection merely dropped would leave its backend sleeping),
    and its connection is not used again."""
    # No statement_timeout to stop it within the test: only the cancellation can.
    async with read_pool(database_url, read_pool_size=1, statement_timeout_ms=0) as (pool, name):
        pid = await pool.fetchval(PID)
        if how == "cancelled":
            read = asyncio.create_task(pool.fetchval(SLEEP))

            async def started() -> bool:
                return await sleeping(database_url, name) > 0

            await eventually(started, "the read never started")
            read.cancel()
            with pytest.raises(asyncio.CancelledError):
                await read
        else:
            with pytest.raises(TimeoutError):
                await pool.fetchval(SLEEP, timeout_s=0.3)

        async def stopped() -> bool:
            return not await sleeping(database_url, name)

        await eventually(stopped, "pg_sleep still runs in PostgreSQL")
        assert pool.get_size() == 0
        assert await pool.fetchval(PID) != pid  # a fresh connection
        assert pool.get_size() == 1

        async def one_left() -> bool:
            return len(await backends(database_url, name)) == 1

        await eventually(one_left, "the stopped read's connection was not closed")


async def test_a_connection_older_than_the_recycle_age_is_replaced(database_url: str) -> None:
    async with read_pool(database_url, read_pool_size=2, pool_recycle=0) as (pool, name):
        pids = [await pool.fetchval(PID) for _ in range(5)]
        assert len(set(pids)) == 5  # each read found the one before too old
        assert pool.get_size() == 1

        async def only_the_last() -> bool:
            return {row["pid"] for row in await backends(database_url, name)} == {pids[-1]}

        await eventually(only_the_last, "replaced connections were left open")
    async with read_pool(database_url, read_pool_size=2) as (pool, _):  # the default: 1800 s
        assert len({await pool.fetchval(PID) for _ in range(5)}) == 1


async def test_close_ends_every_connection_and_refuses_reads(database_url: str) -> None:
    async with read_pool(database_url, read_pool_size=3) as (pool, name):
        await asyncio.gather(*(pool.fetchval("SELECT 1 FROM pg_sleep(0.05)") for _ in range(3)))
        assert len(await backends(database_url, name)) == 3
        running = asyncio.create_task(pool.fetchval("SELECT 7 FROM pg_sleep(0.3)"))
        await asyncio.sleep(0.1)
        await pool.close()
        assert await running == 7  # a read under way finishes, then its connection closes
        await pool.close()  # its connection, given back after the first close

        async def none_left() -> bool:
            return not await backends(database_url, name)

        await eventually(none_left, "connections left open after close")
        assert pool.get_size() == 0
        with pytest.raises(asyncpg.InterfaceError, match="closed"):
            await pool.fetchval(PID)


async def test_a_read_after_postgresql_ended_its_connection_succeeds(database_url: str) -> None:
    """An idle connection ended by the server (a restart, an administrator, idle timeouts):
    the next read still answers, on a fresh connection (Database.read_scalar). How asyncpg
    learns of it depends on when the server's goodbye arrives (before the next read: a closed
    connection; while it starts: ConnectionDoesNotExistError or InternalClientError), so the
    next read comes at several moments."""
    database = Database(make_settings(database_url=database_url, read_pool_size=1))
    await database.open()
    admin = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        for pause in [None, 0, 0.001, 0.002, 0.05] * 6:
            pid = await database.read_scalar(PID, ())
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
            if pause is not None:
                await asyncio.sleep(pause)
            assert await database.read_scalar(PID, ()) not in {pid, None}
            assert database.read_pool is not None and database.read_pool.get_size() == 1
    finally:
        await admin.close()
        await database.close()


def test_a_statement_met_by_the_servers_goodbye_is_unavailable() -> None:
    """The race above, as the client hears of it when a read (or a statement without the read
    path's retry) meets it: UNAVAILABLE, retry shortly, not INTERNAL."""
    raced = asyncpg.InternalClientError(
        "cannot switch to state 12; another operation (2) is in progress"
    )
    assert classify(raced) is UNAVAILABLE
    assert classify(asyncpg.AdminShutdownError("terminating connection")) is UNAVAILABLE
