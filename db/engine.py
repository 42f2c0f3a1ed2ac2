"""The asyncpg-pooled engine and the session factory."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, SessionTransaction


def server_settings(
    statement_timeout_ms: int, application_name: str, pgbouncer: bool = False
) -> dict[str, str]:
    settings = {"application_name": application_name}
    # PgBouncer refuses startup parameters it does not track (statement_timeout among them);
    # behind it the timeout is set per transaction instead (SET LOCAL).
    if statement_timeout_ms > 0 and not pgbouncer:
        # A default for every connection; requests may tighten it with SET LOCAL.
        settings["statement_timeout"] = str(statement_timeout_ms)
    return settings


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 10,
    pool_timeout: float = 10.0,
    pool_recycle: int = 1800,
    statement_timeout_ms: int = 5000,
    application_name: str = "graphql-api",
    pgbouncer: bool = False,
    ping_after: float | None = None,
) -> AsyncEngine:
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        pool_recycle=pool_recycle,
        connect_args={
            "server_settings": server_settings(statement_timeout_ms, application_name, pgbouncer),
            "timeout": 10,
            **(PGBOUNCER_CONNECT_ARGS if pgbouncer else {}),
        },
    )
    ping_when_idle(engine, PING_AFTER_IDLE_S if ping_after is None else ping_after)
    return engine


# A pooled connection idle for this long is pinged before it is handed out: shorter than any
# PostgreSQL restart, so a connection from before one is pinged and replaced; under load
# connections come back to the pool within milliseconds and skip the ping.
PING_AFTER_IDLE_S = 0.25


def ping_when_idle(engine: AsyncEngine, after: float) -> None:
    """SQLAlchemy's pool_pre_ping, for connections that sat idle: its ping on asyncpg is three
    round trips (BEGIN, an empty statement, ROLLBACK), which on every checkout cost a busy
    server more than a createTask's own statements. A connection back in the pool within
    `after` seconds is handed out as it is; if its server connection was cut meanwhile (a
    terminated backend), the request that finds out gets UNAVAILABLE and SQLAlchemy invalidates
    every connection older than that failure, so the next checkouts connect afresh. An idle
    connection that fails its ping is replaced before it is used (the pool retries the
    checkout)."""

    @event.listens_for(engine.sync_engine, "checkin")
    def checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < after:
            return  # new, or in use a moment ago
        try:
            dbapi_connection.ping()
        except Exception as error:
            raise exc.DisconnectionError() from error


# Behind PgBouncer in transaction mode consecutive transactions of one connection may run on
# different server connections, so no prepared statement may outlive its transaction: neither
# asyncpg's cache nor SQLAlchemy's, and the statements SQLAlchemy prepares are unnamed (""), so
# none is left behind on a server connection (or clashes there with another client's name).
PGBOUNCER_CONNECT_ARGS: dict[str, object] = {
    "statement_cache_size": 0,
    "prepared_statement_cache_size": 0,
    "prepared_statement_name_func": lambda: "",
}


def set_local_statement_timeout(
    sessionmaker: async_sessionmaker[AsyncSession], statement_timeout_ms: int
) -> None:
    """Behind PgBouncer: every transaction of these sessions (rate-limit reservations, events,
    sign-in bookkeeping) runs under SET LOCAL statement_timeout, since no connection default
    can be set. A session whose owner sets its own (info["statement_timeout"]) is left to it."""
    if statement_timeout_ms <= 0:
        return

    def after_begin(session: Session, transaction: SessionTransaction, connection: Any) -> None:
        if transaction.nested or session.info.get("statement_timeout"):
            return
        connection.exec_driver_sql(f"SET LOCAL statement_timeout = {int(statement_timeout_ms)}")

    # Listened to on a Session class of this sessionmaker's own: SQLAlchemy has no events on an
    # async_sessionmaker, and listening on Session itself would reach every session there is.
    timed = type("TimedSession", (sessionmaker.kw.get("sync_session_class") or Session,), {})
    event.listen(timed, "after_begin", after_begin)
    sessionmaker.configure(sync_session_class=timed)


class TimedSession(Session):
    """A session whose owner may name the statement_timeout of each of its transactions:
    info["statement_timeout"], a callable giving the milliseconds to SET LOCAL (None: the
    connection's default). Listened to once for the class, not per session: registering a
    listener on every request's session cost more than the rest of its setup."""


@event.listens_for(TimedSession, "after_begin")
def _owner_timeout(session: Session, transaction: SessionTransaction, connection: Any) -> None:
    timeout = session.info.get("statement_timeout")
    if transaction.nested or not callable(timeout):
        return  # a SAVEPOINT inside a transaction that has its timeout already
    ms = timeout()
    if ms is not None:
        connection.exec_driver_sql(f"SET LOCAL statement_timeout = {int(ms)}")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(
        engine, expire_on_commit=False, autoflush=False, sync_session_class=TimedSession
    )
