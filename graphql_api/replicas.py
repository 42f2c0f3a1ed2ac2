"""Read replicas (DATABASE_READ_URL): where a read-only statement may run, and when it may not.

Queries (the fast path's single statements and the resolvers' sessions) go to a streaming replica
that is up and at most DB_REPLICA_MAX_LAG_SECONDS behind; mutations, subscriptions, the rate limit
and everything else stay on the primary. Read-your-writes: after a viewer's committed mutation the
primary's WAL position is remembered for that viewer (in this process) and sent to the client in
a cookie (for every process); until DB_READ_YOUR_WRITES_SECONDS have passed, that viewer's reads go
only to a replica that has replayed past it, else to the primary.

Lag is measured against the primary: every POLL_S a background task samples the primary's
`pg_current_wal_lsn()` and each replica's `pg_last_wal_replay_lsn()`; a replica is as fresh as the
newest primary sample its replay position has reached. A replica whose poll fails is down until a
poll succeeds again, and a statement that finds it down is run on the primary instead.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.requests import HTTPConnection
from starlette.responses import Response

from db.engine import create_sessionmaker
from db.session import DbSession
from db.urls import asyncpg_dsn, redacted
from graphql_api.failures import is_unavailable
from graphql_api.pools import StatementPool, engine_for, statement_pool_for
from graphql_api.settings import Settings

log = logging.getLogger(__name__)

POLL_S = 0.1
POLL_TIMEOUT_S = 1.0
CONNECT_TIMEOUT_S = 2.0
READ_AFTER_COOKIE = "gqlapi-read-after"
NEVER_REPLAYED = 2**63 - 1
RECOVERY_CONFLICT = "40001"  # a standby cancelled the statement to replay WAL
# What the fast path's statements run with, on every replica's pool: see Database.read_pool.
READ_APPLICATION_NAME = "graphql-api-read-replica"
SESSION_APPLICATION_NAME = "graphql-api-replica"

Reader = Callable[[str, tuple[Any, ...]], Awaitable[Any]]


def _fall_back(exc: BaseException) -> bool:
    """A failure that says "this replica, not this statement": run it on the primary."""
    return is_unavailable(exc) or getattr(exc, "sqlstate", None) == RECOVERY_CONFLICT


class Replica:
    def __init__(self, url: str, settings: Settings) -> None:
        self.url = url
        self.name = redacted(url)
        self.settings = settings
        self.read_pool: StatementPool | None = None
        self.engine: AsyncEngine | None = None
        self.sessionmaker: async_sessionmaker[AsyncSession] | None = None
        self.monitor: asyncpg.Connection | None = None
        self.up = False
        self.replay_lsn = -1
        self.not_standby = False
        self.fresh_at = float("-inf")  # time.monotonic() of the newest primary state replayed

    async def open(self) -> None:
        s = self.settings
        self.engine = engine_for(self.url, s, SESSION_APPLICATION_NAME)
        self.sessionmaker = create_sessionmaker(self.engine)
        self.read_pool = statement_pool_for(
            self.url, s, READ_APPLICATION_NAME, timeout=CONNECT_TIMEOUT_S
        )

    async def close(self) -> None:
        await self._drop_monitor()
        if self.read_pool is not None:
            await self.read_pool.close()
        if self.engine is not None:
            await self.engine.dispose()

    def mark_down(self, exc: BaseException) -> None:
        if self.up:
            log.warning("read replica %s is down, reading from the primary: %r", self.name, exc)
        self.up = False

    def lag(self, now: float) -> float:
        return now - self.fresh_at

    async def poll(self, samples: Sequence[tuple[float, int]]) -> None:
        try:
            async with asyncio.timeout(POLL_TIMEOUT_S):
                if self.monitor is None or self.monitor.is_closed():
                    self.monitor = await asyncpg.connect(
                        asyncpg_dsn(self.url),
                        server_settings={"application_name": "graphql-api-replica-monitor"},
                    )
                lsn = await self.monitor.fetchval("SELECT pg_last_wal_replay_lsn()")
        except Exception as exc:  # refused, reset, timed out, shutting down: all mean down
            self.mark_down(exc)
            await self._drop_monitor()
            return
        if lsn is None:  # not a standby: a configuration mistake, said once, never used
            if not self.not_standby:
                log.error("DATABASE_READ_URL %s is not a standby: not reading from it", self.name)
            self.not_standby = True
            self.up = False  # promoted, perhaps: its data is no longer the primary's
            return
        self.replay_lsn = int(lsn)
        for at, primary_lsn in reversed(samples):
            if primary_lsn <= self.replay_lsn:
                self.fresh_at = max(self.fresh_at, at)
                break
        if not self.up:
            log.info("read replica %s is up", self.name)
        self.up = True

    async def _drop_monitor(self) -> None:
        if self.monitor is not None:
            with contextlib.suppress(Exception):
                self.monitor.terminate()
            self.monitor = None


class Replicas:
    def __init__(self, settings: Settings, primary_url: str, primary_read: Reader) -> None:
        self.settings = settings
        self.primary_url = primary_url
        self.primary_read = primary_read
        self.replicas = [Replica(url, settings) for url in settings.database_read_urls]
        self._turn = itertools.count()
        # viewer -> (the primary's WAL position after its last write, when to forget it)
        self.writes: dict[uuid.UUID, tuple[int, float]] = {}
        self.samples: collections.deque[tuple[float, int]] = collections.deque(
            maxlen=int(settings.replica_max_lag_s / POLL_S) + 50
        )
        self._monitor: asyncio.Task[None] | None = None
        self._primary_monitor: asyncpg.Connection | None = None

    async def open(self) -> None:
        for replica in self.replicas:
            await replica.open()
        self._monitor = asyncio.create_task(self._watch(), name="replica-monitor")

    async def close(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        if self._primary_monitor is not None:
            with contextlib.suppress(Exception):
                self._primary_monitor.terminate()
        for replica in self.replicas:
            await replica.close()

    # Routing.

    def pick(self, viewer_id: uuid.UUID | None, read_after: int = 0) -> Replica | None:
        """A replica this viewer may read from now, or None for the primary."""
        now = time.monotonic()
        need = read_after
        if viewer_id is not None and (written := self.writes.get(viewer_id)) is not None:
            if written[1] > now:
                need = max(need, written[0])
            else:
                del self.writes[viewer_id]
        max_lag = self.settings.replica_max_lag_s
        usable = [
            r for r in self.replicas if r.up and r.replay_lsn >= need and r.lag(now) <= max_lag
        ]
        if not usable:
            return None
        return usable[next(self._turn) % len(usable)]

    async def read_scalar(
        self, sql: str, params: tuple[Any, ...], viewer_id: uuid.UUID | None, read_after: int
    ) -> Any:
        """Database.read_scalar, on a replica when the viewer may read from one."""
        replica = self.pick(viewer_id, read_after)
        if replica is None or replica.read_pool is None:
            return await self.primary_read(sql, params)
        try:
            return await replica.read_pool.fetchval(sql, *params)
        except Exception as exc:
            if not _fall_back(exc):
                raise
            replica.mark_down(exc)
            return await self.primary_read(sql, params)

    def reader(self, viewer_id: uuid.UUID | None, read_after: int) -> Reader:
        async def read(sql: str, params: tuple[Any, ...]) -> Any:
            return await self.read_scalar(sql, params, viewer_id, read_after)

        return read

    def session(
        self,
        viewer_id: uuid.UUID | None,
        read_after: int,
        primary: Callable[[], AsyncSession],
        prepare: Callable[[AsyncSession], None],
    ) -> ReplicaDbSession | None:
        replica = self.pick(viewer_id, read_after)
        if replica is None or replica.sessionmaker is None:
            return None
        session = replica.sessionmaker()
        prepare(session)
        return ReplicaDbSession(session, replica, primary, prepare)

    # Read-your-writes.

    async def note_write(self, viewer_id: uuid.UUID | None, response: Response | None) -> None:
        """After a committed mutation: this viewer reads from the primary, or from a replica
        that has replayed past this point, for DB_READ_YOUR_WRITES_SECONDS."""
        try:
            lsn = int(await self.primary_read("SELECT pg_current_wal_lsn()", ()))
        except Exception as exc:  # committed already: not the client's failure
            log.warning("could not read the WAL position after a write: %r", exc)
            lsn = NEVER_REPLAYED  # the primary only, for the whole window
        ttl = self.settings.read_your_writes_s
        if viewer_id is not None:
            self.writes[viewer_id] = (lsn, time.monotonic() + ttl)
        if response is not None:
            response.set_cookie(
                READ_AFTER_COOKIE, str(lsn), max_age=int(ttl) or 1, httponly=True, samesite="lax"
            )

    # The monitor.

    async def _watch(self) -> None:
        while True:
            try:
                await self._poll()
            except asyncio.CancelledError:
                raise
            except Exception:  # the monitor must outlive anything one poll meets
                log.exception("replica monitor poll failed")
            await asyncio.sleep(POLL_S)

    async def _poll(self) -> None:
        now = time.monotonic()
        try:
            async with asyncio.timeout(POLL_TIMEOUT_S):
                if self._primary_monitor is None or self._primary_monitor.is_closed():
                    self._primary_monitor = await asyncpg.connect(
                        asyncpg_dsn(self.primary_url),
                        server_settings={"application_name": "graphql-api-replica-monitor"},
                    )
                self.samples.append(
                    (now, int(await self._primary_monitor.fetchval("SELECT pg_current_wal_lsn()")))
                )
        except Exception:  # no sample: the replicas' lag grows until the primary answers
            self._primary_monitor = None
        await asyncio.gather(*(r.poll(self.samples) for r in self.replicas))
        expired = [v for v, (_, until) in self.writes.items() if until <= now]
        for viewer_id in expired:
            del self.writes[viewer_id]


def read_after(connection: HTTPConnection) -> int:
    """The WAL position in the client's read-your-writes cookie (0 when none or not a number:
    a forged one can only send its own reads to the primary)."""
    raw = connection.cookies.get(READ_AFTER_COOKIE)
    return int(raw) if raw is not None and raw.isdigit() and len(raw) < 20 else 0


class ReplicaDbSession(DbSession):
    """A query's session on a replica. If its first statement finds the replica gone, the
    replica is marked down and the statement, and the rest of the operation, run on the
    primary: nothing has been read yet, so nothing mixes. Later failures are the query's."""

    def __init__(
        self,
        session: AsyncSession,
        replica: Replica,
        primary: Callable[[], AsyncSession],
        prepare: Callable[[AsyncSession], None],
    ) -> None:
        super().__init__(session)
        self.replica = replica
        self.primary = primary
        self.prepare = prepare
        self.tried = False

    async def _run(self, call: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
        async with self.lock:
            if self.tried:
                return await call(self.session)
            self.tried = True
            try:
                return await call(self.session)
            except Exception as exc:
                if not _fall_back(exc):
                    raise
                self.replica.mark_down(exc)
                with contextlib.suppress(Exception):
                    await self.session.close()
                self.session = self.primary()
                self.prepare(self.session)
                return await call(self.session)

    async def execute(self, statement: Any, params: Any = None) -> Any:
        return await self._run(lambda s: s.execute(statement, params))

    async def scalars(self, statement: Any, params: Any = None) -> Any:
        async def scalars(s: AsyncSession) -> Any:
            return (await s.scalars(statement, params)).all()

        return await self._run(scalars)

    async def scalar(self, statement: Any, params: Any = None) -> Any:
        return await self._run(lambda s: s.scalar(statement, params))
