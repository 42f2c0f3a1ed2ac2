"""Subscription.taskEvents: live task changes of one workspace (optionally one project)."""

from __future__ import annotations

import asyncio
import enum
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import strawberry
from graphql import GraphQLField, GraphQLObjectType, GraphQLResolveInfo
from graphql.execution import Executor
from graphql.pyutils import Path
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from db import models
from db.repositories import MembershipRepository, ProjectRepository
from db.session import DbSession
from graphql_api.context import Context
from graphql_api.errors import ApiError
from graphql_api.events.hub import EventsMissed, ListenerUnavailable, SubscriberTooSlow
from graphql_api.events.loader import Delivery
from graphql_api.events.shared import NEXT_SENDER, SUBSCRIPTION_EXECUTOR
from graphql_api.schema.relay import from_global_id, to_global_id
from graphql_api.schema.types import Task, User

if TYPE_CHECKING:
    from graphql_api.loaders import Loaders


class PerEventMemoExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """graphql-core 3.3 copies the subscription's executor for each event, sharing its
    sub-field memo, which is keyed by the id of lists made anew for each event: it never hits
    and grows by every event for the life of the subscription (tens of objects per event, and
    full garbage collections that scan them all). Each event gets a memo of its own."""

    def build_per_event_executor(self, payload: Any) -> Executor[Any]:
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        return executor

    def build_resolve_info(
        self,
        field_def: GraphQLField,
        field_nodes: list[Any],
        parent_type: GraphQLObjectType,
        path: Path,
    ) -> GraphQLResolveInfo[Any]:
        if parent_type is self.schema.subscription_type:
            # The subscription's resolver may hand this executor to the hub, which then
            # executes the selection set of each event (events/shared.py).
            SUBSCRIPTION_EXECUTOR.set(self)
        return super().build_resolve_info(field_def, field_nodes, parent_type, path)


@strawberry.enum
class TaskEventKind(enum.Enum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    DELETED = "DELETED"
    RESTORED = "RESTORED"


@strawberry.type
class TaskEvent:
    kind: TaskEventKind
    task: Task | None = strawberry.field(description="Null when you may no longer see it.")
    task_id: strawberry.ID
    at: datetime
    _actor_id: strawberry.Private[uuid.UUID | None]
    # The actor as the hub loaded it, when this subscriber may see them (a co-member).
    _actor: strawberry.Private[models.User | None] = None

    @strawberry.field(graphql_type=User | None)
    def actor(self, info: strawberry.Info) -> Any:
        # Synchronous when preloaded (the common case): no coroutine for the executor to await.
        if self._actor_id is None:
            return None
        if self._actor is not None:
            return User.from_model(self._actor)
        return self._load_actor(info)

    async def _load_actor(self, info: strawberry.Info) -> User | None:
        assert self._actor_id is not None
        ctx: Context = info.context
        found = await ctx.loaders.users.load(self._actor_id)
        return User.from_model(found) if found else None


def _id(global_id: str, type_name: str) -> uuid.UUID:
    parsed = from_global_id(global_id)
    if parsed is None or parsed[0] != type_name:
        raise ApiError(f"no {type_name} with this id", "NOT_FOUND")
    return parsed[1]


async def task_events(
    info: strawberry.Info, workspace_id: strawberry.ID, project_id: strawberry.ID | None = None
) -> AsyncGenerator[TaskEvent, None]:
    ctx: Context = info.context
    viewer = ctx.require_viewer()
    if ctx.hub is None:
        raise ApiError("live updates are not available on this server", "UNAVAILABLE")
    workspace = _id(workspace_id, "Workspace")
    project = _id(project_id, "Project") if project_id is not None else None
    async with ctx.sessionmaker() as session:
        db = DbSession(session)
        if await MembershipRepository(db).get_for(workspace, viewer) is None:
            raise ApiError("no Workspace with this id", "NOT_FOUND")
        if project is not None:
            found = await ProjectRepository(db).get(project)
            if found is None or found.workspace_id != workspace:
                raise ApiError("no Project with this id in this workspace", "NOT_FOUND")
    from graphql_api.schema.shared_events import SharedTaskEvents  # it imports this module

    send_next = NEXT_SENDER.get()
    shared = SharedTaskEvents.create(info, workspace) if send_next is not None else None
    try:
        subscriber = await ctx.hub.subscribe(workspace, project, viewer, ctx.sessionmaker, shared)
    except ListenerUnavailable:
        raise ApiError(
            "live updates are unavailable right now; subscribe again shortly", "UNAVAILABLE"
        ) from None
    try:
        async for batch in subscriber.batches():
            if shared is not None:
                # Executed by the hub, once for every subscriber that gets the same payload.
                assert send_next is not None
                await send_next(batch)  # type: ignore[arg-type]
                continue
            for delivery in batch:
                # The hub loaded the event once for every subscriber of this process, with this
                # subscriber's current role applied; the selection set resolves from those
                # rows. A session (a connection) is opened only if a field needs more.
                assert isinstance(delivery, Delivery)
                async with event_operation(ctx, workspace, delivery):
                    yield task_event(delivery)
    except SubscriberTooSlow:
        raise ApiError(
            "this subscription fell too far behind and was dropped; subscribe again and refetch",
            "SUBSCRIPTION_OVERFLOW",
        ) from None
    except EventsMissed:
        raise ApiError(
            "live updates were interrupted and events may have been missed; "
            "subscribe again and refetch",
            "EVENTS_MISSED",
        ) from None
    finally:
        ctx.hub.unsubscribe(subscriber)


class LazyDbSession(DbSession):
    """A DbSession whose AsyncSession is made on first use: most events need none."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self._session: AsyncSession | None = None
        self.lock = asyncio.Lock()

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            self._session = self._sessionmaker()
        return self._session

    @session.setter
    def session(self, session: AsyncSession) -> None:
        self._session = session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def task_event(delivery: Delivery) -> TaskEvent:
    event = delivery.event
    actor = event.get("actor")
    actor_id = uuid.UUID(actor) if actor else None
    return TaskEvent(
        kind=TaskEventKind(event["kind"]),
        task=Task.from_model(delivery.task) if delivery.task is not None else None,
        task_id=to_global_id("Task", uuid.UUID(event["task"])),
        at=datetime.fromisoformat(event["at"]),
        _actor_id=actor_id,
        _actor=delivery.users.get(actor_id) if actor_id else None,
    )


@asynccontextmanager
async def event_operation(
    ctx: Context, workspace: uuid.UUID, delivery: Delivery
) -> AsyncIterator[None]:
    """The unit of work of one event: DataLoaders primed with what the hub loaded, and a
    session opened only if a field needs more."""
    db = LazyDbSession(ctx.sessionmaker)
    try:
        with ctx.operation(db):
            prime(ctx.loaders, workspace, delivery)
            yield
    finally:
        await db.close()


def prime(loaders: Loaders, workspace: uuid.UUID, delivery: Delivery) -> None:
    """Seed this event's DataLoaders with what the hub loaded: exactly what the subscriber's own
    scoped reads would return (its role; the task and project only when visible to that role;
    users of the workspace, whom every member sees)."""
    loaders.roles.prime(workspace, delivery.role)
    if delivery.task is not None:
        loaders.tasks.prime(delivery.task.id, delivery.task)
    if delivery.project is not None:
        loaders.projects.prime(delivery.project.id, delivery.project)
    for user_id, user in delivery.users.items():
        loaders.users.prime(user_id, user)
