"""The process's database: where it is (configured or embedded), its engine and sessions.

Owned by the app lifespan: opened at start-up, disposed at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db.embedded import EmbeddedPostgres
from db.engine import (
    create_sessionmaker,
    set_local_statement_timeout,
)
from db.migrations import head_revision, upgrade
from db.urls import asyncpg_dsn
from graphql_api.pools import StatementPool, engine_for, statement_pool_for
from graphql_api.replicas import Replicas
from graphql_api.settings import Settings

log = logging.getLogger(__name__)

READINESS_TIMEOUT_S = 3.0
# A read's connection that failed under it, not the read: ended by the server (a restart, an
# administrator) before or while it ran, a dead socket, or asyncpg caught by the server's goodbye
# as it began. Run once more on a fresh connection.
RECONNECT = (
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.AdminShutdownError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
)


class Database:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedded: EmbeddedPostgres | None = None
        self.engine: AsyncEngine | None = None
        self.url: str | None = None  # where it is, once open (the embedded server's too)
        self.read_pool: StatementPool | None = None
        # Writes that are one statement alone in their operation (createTask), committing on
        # their own: apart from the reads, which a write waiting on a row lock must not hold up.
        self.write_pool: StatementPool | None = None
        self.sessionmaker: async_sessionmaker[AsyncSession] | None = None
        # Behind PgBouncer the fast path's single reads carry their timeout themselves (asyncpg
        # cancels a statement past it); directly, the connection's statement_timeout does it.
        self.read_timeout_s: float | None = None
        self.replicas: Replicas | None = None  # DATABASE_READ_URL (graphql_api/replicas.py)

    async def open(self) -> None:
        url = self.settings.database_url
        if url is None:
            # The zero-configuration default: start (or join) the embedded server and migrate it.
            self.embedded = EmbeddedPostgres(self.settings.embedded_data_dir)
            url = await asyncio.to_thread(self.embedded.start)
            await upgrade(url)
            log.info("using the embedded PostgreSQL in %s", self.embedded.data_dir)
        self.url = url
        s = self.settings
        self.engine = engine_for(url, s, pgbouncer=s.pgbouncer)
        self.sessionmaker = create_sessionmaker(self.engine)
        if s.pgbouncer:  # README, PgBouncer
            set_local_statement_timeout(self.sessionmaker, s.statement_timeout_ms)
            if s.statement_timeout_ms > 0:
                self.read_timeout_s = s.statement_timeout_ms / 1000
        self.read_pool = statement_pool_for(url, s, "graphql-api-read", s.pgbouncer)
        self.write_pool = statement_pool_for(
            url, s, "graphql-api-write", s.pgbouncer, size=s.pool_size
        )
        if s.database_read_urls:
            self.replicas = Replicas(s, url, self.read_scalar)
            await self.replicas.open()

    async def read_scalar(self, sql: str, params: tuple[Any, ...]) -> Any:
        """The one value of a read-only statement. A connection found dead (PostgreSQL was
        restarted) is dropped by the pool and the statement tried once more on a fresh one."""
        assert self.read_pool is not None, "database not opened"
        timeout = self.read_timeout_s
        try:
            return await self.read_pool.fetchval(sql, *params, timeout_s=timeout)
        except RECONNECT as exc:
            if isinstance(exc, TimeoutError):  # an OSError too, but the statement's own timeout
                raise
            return await self.read_pool.fetchval(sql, *params, timeout_s=timeout)

    async def fetch(
        self, sql: str, *params: Any, sending: Callable[[], None] | None = None
    ) -> list[Any]:
        """The rows of one write statement on the primary, committing on its own. Not run again
        when its connection fails: it may have committed. `sending`: StatementPool.fetch. The
        connection's statement_timeout bounds it, not a timeout of asyncpg's, whose cancel could
        arrive after the commit (so never behind PgBouncer: resolvers/mutation._alone)."""
        assert self.write_pool is not None, "database not opened"
        return await self.write_pool.fetch(sql, *params, sending=sending)

    async def close(self) -> None:
        if self.replicas is not None:
            await self.replicas.close()
            self.replicas = None
        if self.engine is not None:
            await self.engine.dispose()
            self.engine = None
        for pool in (self.read_pool, self.write_pool):
            if pool is not None:
                await pool.close()
        self.read_pool = self.write_pool = None
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)
            self.embedded = None

    async def readiness(self) -> str | None:
        """None when the database answers and is migrated to head; otherwise the reason."""
        if self.engine is None:
            return "database not opened"
        # A connection of its own, not one of the request pool's: a pool busy with requests
        # says nothing about whether the database is there, and must not take every instance
        # out of the load balancer at once.
        url = self.url or self.engine.url.render_as_string(hide_password=False)
        try:
            async with asyncio.timeout(READINESS_TIMEOUT_S):
                conn = await asyncpg.connect(
                    asyncpg_dsn(url),
                    server_settings={"application_name": "graphql-api-readyz"},
                    statement_cache_size=0 if self.settings.pgbouncer else 100,
                )
                try:
                    revision = await conn.fetchval("SELECT version_num FROM alembic_version")
                except asyncpg.UndefinedTableError:  # never migrated
                    revision = None
                finally:
                    await conn.close()
        except TimeoutError:
            return "database did not answer in time"
        except Exception as exc:  # any driver or network failure means "not ready"
            return f"database unreachable: {type(exc).__name__}"
        head = head_revision()
        if revision != head:
            return f"database schema at {revision or 'nothing'}, code expects {head}"
        return None
