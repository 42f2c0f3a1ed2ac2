"""Subscription.taskEvents: live task changes of one workspace (optionally one project)."""

from __future__ import annotations

import enum
import uuid
from collections.abc import AsyncGenerator
from datetime import datetime

import strawberry

from db.repositories import MembershipRepository, ProjectRepository
from db.session import DbSession
from graphql_api import policy
from graphql_api.context import Context
from graphql_api.errors import ApiError
from graphql_api.events.hub import SubscriberTooSlow
from graphql_api.schema.relay import from_global_id, to_global_id
from graphql_api.schema.types import Task, User


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

    @strawberry.field
    async def actor(self, info: strawberry.Info) -> User | None:
        ctx: Context = info.context
        if self._actor_id is None:
            return None
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
    subscriber = ctx.hub.subscribe(workspace, project)
    try:
        async for event in subscriber.events():
            # Each event is read with the subscriber's own, current permissions, in a short
            # session of its own (none is held while waiting).
            async with ctx.sessionmaker() as session:
                with ctx.operation(DbSession(session)):
                    role = await ctx.loaders.roles.load(workspace)
                    if role is None:
                        return  # removed from the workspace: the subscription ends
                    task = await ctx.loaders.tasks.load(uuid.UUID(event["task"]))
                    if task is not None and not policy.sees_task(role, task.deleted_at is not None):
                        task = None
                    actor = event.get("actor")
                    yield TaskEvent(
                        kind=TaskEventKind(event["kind"]),
                        task=Task.from_model(task) if task is not None else None,
                        task_id=to_global_id("Task", uuid.UUID(event["task"])),
                        at=datetime.fromisoformat(event["at"]),
                        _actor_id=uuid.UUID(actor) if actor else None,
                    )
    except SubscriberTooSlow:
        raise ApiError(
            "this subscription fell too far behind and was dropped; subscribe again and refetch",
            "SUBSCRIPTION_OVERFLOW",
        ) from None
    finally:
        ctx.hub.unsubscribe(subscriber)
