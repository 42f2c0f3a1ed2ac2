"""The typed per-request context."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from db.repositories.base import Scope
from db.session import DbSession, Statements
from graphql_api.errors import unauthenticated
from graphql_api.settings import Settings

if TYPE_CHECKING:
    from graphql_api.deadlines import Deadline
    from graphql_api.events.hub import EventHub
    from graphql_api.limits.extension import Cost
    from graphql_api.limits.rate import RateLimiter
    from graphql_api.loaders import Loaders
    from graphql_api.replicas import Replicas


# A write that must hold although the mutation field that decided it fails (theft detection's
# revocation, a failed sign-in's count). It runs again after a rollback has undone it, so it
# must not depend on anything else the rolled-back transaction did (see Context.keep_write).
KeptWrite = Callable[[DbSession], Awaitable[None]]


@dataclass
class _OperationState:
    db: DbSession
    deadline: float  # time.monotonic() by which the operation must be done (Context.operation)
    loaders: Loaders | None = None
    kept_writes: list[KeptWrite] = field(default_factory=list)  # not yet run
    kept_done: list[KeptWrite] = field(default_factory=list)  # run in the request's transaction


_OPERATION: ContextVar[_OperationState | None] = ContextVar("graphql_operation", default=None)

# The request's deadline (GraphQLFront's, or a WebSocket operation's) while it runs.
REQUEST_DEADLINE: ContextVar[Deadline | None] = ContextVar("request_deadline", default=None)


def commit_begins() -> None:
    """A write is about to commit (a COMMIT, or statements that each commit on their own): the
    request's deadline no longer cancels it, so no client is told TIMEOUT about a write that
    committed, or left not knowing. What is left is bounded all the same: each statement by
    statement_timeout (never later than the deadline: unit_of_work.statement_timeout_ms), then
    the response. For the rest of the request: a batch's later operations run without it."""
    deadline = REQUEST_DEADLINE.get()
    if deadline is not None:
        deadline.lift()  # past it already: its cancellation is on its way


@dataclass
class Context:
    request: Request | WebSocket
    response: Response | None
    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    # Runs one read-only statement outside the unit of work (the fast path).
    read_scalar: Callable[[str, tuple[Any, ...]], Awaitable[Any]]
    limiter: RateLimiter
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # time.monotonic() by which the request must be done (GraphQLFront enforces it too); over a
    # WebSocket, by which its first operation must be (each has its own: operation_deadline).
    deadline: float = field(default_factory=lambda: time.monotonic() + 60)
    # The signed-in user, from a valid bearer token.
    viewer_id: uuid.UUID | None = None
    # A token was presented but is not valid (expired, forged, malformed).
    bad_token: bool = False
    # What the operation was estimated to cost (set by the Limits extension).
    cost: Cost | None = None
    # The graphql-transport-ws connection_init payload (strawberry sets it).
    connection_params: dict[str, Any] | None = None
    # This process's fan-out of task events (None where live updates are not running).
    hub: EventHub | None = None
    # Where queries may read (DATABASE_READ_URL; None: the primary only).
    replicas: Replicas | None = None
    # The primary's connections for single statements that commit on their own: a mutation
    # whose writes are one statement runs it there (resolvers/mutation.py, one_statement).
    statements: Statements | None = None

    @property
    def db(self) -> DbSession:
        state = _OPERATION.get()
        if state is None:
            raise RuntimeError("no database session: used outside an operation")
        return state.db

    @property
    def operation_deadline(self) -> float:
        """time.monotonic() by which the current operation must be done: the request's deadline
        over HTTP, the operation's own over a WebSocket."""
        state = _OPERATION.get()
        return self.deadline if state is None else state.deadline

    @property
    def loaders(self) -> Loaders:
        state = _OPERATION.get()
        if state is None:
            raise RuntimeError("no loaders: used outside an operation")
        if state.loaders is None:
            from graphql_api.loaders import Loaders  # the loaders import the schema's types

            state.loaders = Loaders(self)
        return state.loaders

    def keep_write(self, write: KeptWrite) -> None:
        """Make `write` outlive the failure of the current mutation field. It runs in the
        request's own transaction once the field's SAVEPOINT is released or rolled back (the
        @mutation decorator), so it commits with the operation; if the whole operation is rolled
        back, the unit of work runs it again in a transaction of its own on the same session.

        Never a second session: the request's transaction may hold the very row lock that write
        needs (a sibling field's), and a second connection would wait on it until the timeout
        while the request held two connections of the pool."""
        state = _OPERATION.get()
        if state is None:
            raise RuntimeError("no operation to keep a write in")
        state.kept_writes.append(write)

    async def run_kept_writes(self) -> None:
        """Called by the @mutation decorator outside the field's SAVEPOINT."""
        state = _OPERATION.get()
        while state is not None and state.kept_writes:
            write = state.kept_writes.pop(0)
            await write(state.db)
            state.kept_done.append(write)

    @contextmanager
    def operation(self, db: DbSession) -> Iterator[_OperationState]:
        """The session and DataLoaders of one operation (or one subscription event). They live in
        a context variable, not on the Context, because a WebSocket connection shares one Context
        among all its operations, each running in a task of its own. For the same reason each
        operation over a WebSocket has a deadline of its own, from its start: the Context's is
        from the connection's, and passes while the connection stays open."""
        deadline = self.deadline
        if isinstance(self.request, WebSocket):
            deadline = time.monotonic() + self.settings.request_timeout_s
        state = _OperationState(db, deadline)
        token = _OPERATION.set(state)
        try:
            yield state
        finally:
            try:
                _OPERATION.reset(token)
            except ValueError:  # closed from another context (a cancelled subscription)
                _OPERATION.set(None)

    def require_viewer(self) -> uuid.UUID:
        if self.viewer_id is None or self.bad_token:
            raise unauthenticated()
        return self.viewer_id

    @property
    def scope(self) -> Scope:
        return Scope(self.require_viewer())

    @property
    def client_ip(self) -> str:
        client = self.request.client
        return client.host if client else "unknown"
