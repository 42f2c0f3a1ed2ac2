"""Subscription.taskEvents: live task changes of one workspace (optionally one project).

The hub (events/hub.py) delivers each event with the rows it loaded for it. Where the transport
can send pre-serialized payloads, the hub also executes the selection, once per group of
subscribers that get the same payload (events/group_execution.py); otherwise each event is
executed here, for this subscriber, in its own unit of work (events/event_execution.py).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator

import strawberry

from db.repositories import MembershipRepository, ProjectRepository
from db.session import DbSession
from graphql_api.context import Context
from graphql_api.errors import ApiError

# As modules, not their names: importing either of them first imports graphql_api.schema, whose
# Subscription imports this module before they are done.
from graphql_api.events import event_execution, group_execution
from graphql_api.events.hub import EventsMissed, ListenerUnavailable, SubscriberTooSlow
from graphql_api.events.loader import Delivery
from graphql_api.events.shared import NEXT_SENDER
from graphql_api.schema.relay import from_global_id
from graphql_api.schema.subscriptions import TaskEvent


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
    send_next = NEXT_SENDER.get()
    shared = (
        group_execution.SharedTaskEvents.create(info, workspace) if send_next is not None else None
    )
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
                async with event_execution.event_operation(ctx, workspace, delivery):
                    yield event_execution.task_event(delivery)
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
