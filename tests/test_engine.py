"""The pool's connections: one idle for a while is pinged before use and replaced when its
server connection is gone; one back in the pool a moment ago is handed out without a ping (a
request that finds its connection dead then fails, and the pool reconnects the rest)."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import create_engine
from db.urls import asyncpg_dsn


async def _pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _terminate(url: str, pid: int) -> None:
    admin = await asyncpg.connect(asyncpg_dsn(url))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


def _engine(url: str, ping_after: float) -> AsyncEngine:
    return create_engine(url, pool_size=1, max_overflow=0, ping_after=ping_after)


async def test_an_idle_connection_whose_server_went_away_is_replaced(
    fresh_database_url: str,
) -> None:
    engine = _engine(fresh_database_url, ping_after=0.0)  # every checkout counts as idle
    try:
        first = await _pid(engine)
        await _terminate(fresh_database_url, first)
        assert await _pid(engine) != first  # pinged, replaced, no error
    finally:
        await engine.dispose()


async def test_a_connection_used_a_moment_ago_is_not_pinged(fresh_database_url: str) -> None:
    engine = _engine(fresh_database_url, ping_after=3600.0)
    try:
        first = await _pid(engine)
        await _terminate(fresh_database_url, first)
        with pytest.raises(exc.DBAPIError) as failed:
            await _pid(engine)
        assert failed.value.connection_invalidated
        assert await _pid(engine) != first  # the pool connected afresh
    finally:
        await engine.dispose()
