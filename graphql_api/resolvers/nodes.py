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
from graphql_api.resolvers.common import sees_task, task_of_comment
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
    loader: str, wrap: Callable[[Any], Node], visible: Callable[[Context, Any], Awaitable[bool]]
) -> Resolve:
    """Within the viewer's workspaces, and then only when `visible(ctx, obj)`."""

    async def resolve(ctx: Context, id: uuid.UUID) -> Node | None:
        found = await getattr(ctx.loaders, loader).load(id)
        if found is None or not await visible(ctx, found):
            return None
        return wrap(found)

    return resolve


async def _comment_visible(ctx: Context, comment: Any) -> bool:
    return await task_of_comment(ctx, comment) is not None


async def _audit_visible(ctx: Context, event: Any) -> bool:
    return policy.can(await ctx.loaders.roles.load(event.workspace_id), policy.Action.READ_AUDIT)


RESOLVERS: dict[str, Resolve] = {
    "User": _simple("users", User.from_model),
    "Workspace": _simple("workspaces", Workspace.from_model),
    "Project": _simple("projects", Project.from_model),
    "Label": _simple("labels", Label.from_model),
    "Comment": _guarded("comments", Comment.from_model, _comment_visible),
    "Task": _guarded("tasks", Task.from_model, sees_task),
    "AuditEvent": _guarded("audit_events", AuditEvent.from_model, _audit_visible),
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
