"""A database's two pools, as the settings size them: the engine (sessions for the resolvers
and mutations) and the asyncpg pool of single fast-path reads. The primary's (database.py) and
each read replica's (replicas.py) are made here, alike."""

from __future__ import annotations

from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import PGBOUNCER_CONNECT_ARGS, create_engine, server_settings
from db.urls import asyncpg_dsn
from graphql_api.settings import Settings


async def keep_session(conn: asyncpg.Connection) -> None:
    """What a released pool connection needs before its next use, when all it ever ran is single
    SELECTs: nothing. asyncpg's default reset (a RESET ALL, UNLISTEN, CLOSE ALL and advisory
    unlock statement) would be one more round trip per request; a transaction left open is still
    rolled back by asyncpg before this is called."""


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


async def read_pool_for(
    url: str, s: Settings, application_name: str, pgbouncer: bool = False, **options: Any
) -> asyncpg.Pool:
    """Single read statements (the fast path) go straight to asyncpg on a pool of their own: no
    BEGIN/ROLLBACK around them, no ping (a dead connection is retried instead), and none of the
    ORM's per-statement machinery."""
    if pgbouncer:  # README, PgBouncer
        options["statement_cache_size"] = PGBOUNCER_CONNECT_ARGS["statement_cache_size"]
    pool: asyncpg.Pool = await asyncpg.create_pool(
        asyncpg_dsn(url),
        min_size=0,  # connect lazily, like the engine: start-up must not need the database
        max_size=s.read_pool_size,
        max_inactive_connection_lifetime=s.pool_recycle,
        server_settings=server_settings(s.statement_timeout_ms, application_name, pgbouncer),
        reset=keep_session,
        **options,
    )
    return pool
