"""node / nodes: any object by its global id, or null when missing or not visible."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import strawberry

from db.errors import InvalidInput
from graphql_api import policy
from graphql_api.context import Context
from graphql_api.schema.relay import Node, from_global_id
from graphql_api.schema.types import AuditEvent, Comment, Label, Project, Task, User, Workspace

MAX_NODES = 100

Resolve = Callable[[Context, uuid.UUID], Awaitable[Node | None]]


def _simple(loader: str, wrap: Callable[[Any], Node]) -> Resolve:
    async def resolve(ctx: Context, id: uuid.UUID) -> Node | None:
        found = await getattr(ctx.loaders, loader).load(id)
        return wrap(found) if found else None

    return resolve


def _guarded(
    loader: str, wrap: Callable[[Any], Node], action: policy.Action, when: Callable[[Any], bool]
) -> Resolve:
    """Visible to members, but where `when(obj)` holds only to roles allowed `action`."""

    async def resolve(ctx: Context, id: uuid.UUID) -> Node | None:
        found = await getattr(ctx.loaders, loader).load(id)
        if found is None:
            return None
        if when(found) and not policy.can(await ctx.loaders.roles.load(found.workspace_id), action):
            return None
        return wrap(found)

    return resolve


RESOLVERS: dict[str, Resolve] = {
    "User": _simple("users", User.from_model),
    "Workspace": _simple("workspaces", Workspace.from_model),
    "Project": _simple("projects", Project.from_model),
    "Label": _simple("labels", Label.from_model),
    "Comment": _simple("comments", Comment.from_model),
    "Task": _guarded(
        "tasks", Task.from_model, policy.Action.READ_DELETED, lambda t: t.deleted_at is not None
    ),
    "AuditEvent": _guarded(
        "audit_events", AuditEvent.from_model, policy.Action.READ_AUDIT, lambda e: True
    ),
}


async def _node(ctx: Context, global_id: str) -> Node | None:
    parsed = from_global_id(global_id)
    if parsed is None or parsed[0] not in RESOLVERS:
        return None
    return await RESOLVERS[parsed[0]](ctx, parsed[1])


async def node(info: strawberry.Info, id: strawberry.ID) -> Node | None:
    return await _node(info.context, id)


async def nodes(info: strawberry.Info, ids: list[strawberry.ID]) -> list[Node | None]:
    if len(ids) > MAX_NODES:
        raise InvalidInput(f"at most {MAX_NODES} ids at a time", field=["ids"])
    # Gathered, so the DataLoaders batch every id of a type into one statement.
    return list(await asyncio.gather(*(_node(info.context, i) for i in ids)))
