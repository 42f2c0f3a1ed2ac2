"""One operation = one session = one transaction.

Commits a mutation that finished without top-level errors; rolls back everything else. The
decision is made from the GraphQL result, never from the HTTP status. The session is closed when
the operation ends, so none outlives it.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from db.session import DbSession
from graphql_api.context import commit_begins
from graphql_api.replicas import read_after
from graphql_api.retries import note_committed_apart

if TYPE_CHECKING:
    from graphql_api.context import Context, KeptWrite, _OperationState

log = logging.getLogger(__name__)


def statement_timeout_ms(context: Context) -> int | None:
    """The statement_timeout the request's transaction must SET LOCAL: the configured limit, or
    less when the request's deadline is nearer, so no statement outlives it; None when the
    connection's default is that already (db.engine.server_settings), which is always but behind
    PgBouncer, where connections have no default."""
    settings = context.settings
    left_ms = int((context.operation_deadline - time.monotonic()) * 1000)
    limit = settings.statement_timeout_ms
    timeout = max(1, min(left_ms, limit) if limit > 0 else left_ms)
    if timeout == limit and not settings.pgbouncer:
        return None
    return timeout


def time_statements(session: AsyncSession, context: Context) -> None:
    """Every transaction of the request's `session` runs under statement_timeout_ms (db.engine.
    TimedSession): SET LOCAL is sent only when it changes something, so most requests save
    that round trip."""
    session.info["statement_timeout"] = functools.partial(statement_timeout_ms, context)


class UnitOfWork(SchemaExtension):
    _state: _OperationState | None = None

    async def on_operation(self) -> AsyncIterator[None]:
        context: Context = self.execution_context.context
        # The session connects on first use only: a subscription, which lives for hours, never
        # uses this one (it opens a short session per event), so it holds no connection.
        async with context.sessionmaker() as session:
            time_statements(session, context)
            db = DbSession(session)
            with context.operation(db) as state:
                self._state = state
                yield
            result = self.execution_context.result
            is_mutation = self.execution_context.operation_type == OperationType.MUTATION
            # A field error can end execution while a sibling field still reads: it finishes
            # (or fails) first, and none starts on this session afterwards.
            async with db.ending():
                if is_mutation and result is not None and not result.errors:
                    commit_begins()
                    await session.commit()
                    if context.replicas is not None:  # read-your-writes (graphql_api/replicas.py)
                        await context.replicas.note_write(context.viewer_id, context.response)
                else:
                    await session.rollback()
                    kept = state.kept_done + state.kept_writes
                    if kept:
                        note_committed_apart()  # the operation must not run again
                        await _run_kept_writes_alone(session, kept)

    async def on_execute(self) -> AsyncIterator[None]:
        """A query reads from a replica when one may serve this viewer (DATABASE_READ_URL):
        decided here, once the operation's type is known, before anything has been read."""
        context: Context = self.execution_context.context
        replicas, state = context.replicas, self._state
        if (
            replicas is None
            or state is None
            or self.execution_context.operation_type != OperationType.QUERY
        ):
            yield
            return
        db = replicas.session(
            context.viewer_id,
            read_after(context.request),
            context.sessionmaker,
            lambda s: time_statements(s, context),
        )
        if db is None:
            yield
            return
        primary, state.db = state.db, db
        try:
            yield
        finally:
            state.db = primary
            await db.session.close()  # a query: nothing to commit


async def _run_kept_writes_alone(session: AsyncSession, writes: list[KeptWrite]) -> None:
    """The writes that must outlive a failed field (Context.keep_write), again, in a transaction
    of their own on this session: the rollback released the request's locks, so they wait on
    nothing of its own."""
    db = DbSession(session)
    try:
        for write in writes:
            await write(db)
        await session.commit()
    except Exception:
        await session.rollback()
        log.exception("writes kept from a rolled-back operation failed")
