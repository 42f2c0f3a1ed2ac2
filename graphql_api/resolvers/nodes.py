"""node / nodes: any object by its global id, or null when missing or not visible.

NODE_TYPES is the one definition of what each type's id finds: its repository (tenant scope and
soft deletes) and, where the viewer's role matters, the rule in both forms, for the resolvers
here and for the compiled fast path (graphql_api/fast/compiler.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import strawberry
from sqlalchemy import ColumnElement

from db.errors import InvalidInput
from db.repositories import (
    AuditEventRepository,
    CommentRepository,
    LabelRepository,
    ProjectRepository,
    Repository,
    TaskRepository,
    UserRepository,
    WorkspaceRepository,
)
from graphql_api import policy
from graphql_api.context import Context
from graphql_api.resolvers.common import sees_task, task_of_comment
from graphql_api.resolvers.fields import object_type
from graphql_api.schema.relay import Node, from_global_id

MAX_NODES = 100


async def _comment_visible(ctx: Context, comment: Any) -> bool:
    return await task_of_comment(ctx, comment) is not None


async def _audit_visible(ctx: Context, event: Any) -> bool:
    return policy.can(await ctx.loaders.roles.load(event.workspace_id), policy.Action.READ_AUDIT)


@dataclass(frozen=True)
class NodeType:
    """What an id of this type finds: a row of `repository` as the viewer sees it, and then
    only when `visible(ctx, row)`, whose SQL twin is `visible_sql(repository)`."""

    repository: type[Repository[Any]]
    visible: Callable[[Context, Any], Awaitable[bool]] | None = None
    visible_sql: Callable[[Any], ColumnElement[bool]] | None = None


def _seeing_deleted() -> list[Any]:
    return policy.roles_allowed(policy.Action.READ_DELETED)


NODE_TYPES: dict[str, NodeType] = {
    "User": NodeType(UserRepository),
    "Workspace": NodeType(WorkspaceRepository),
    "Project": NodeType(ProjectRepository),
    "Label": NodeType(LabelRepository),
    # Comments follow their task; deleted tasks only for the roles that may see them.
    "Comment": NodeType(
        CommentRepository, _comment_visible, lambda r: r.of_visible_task(_seeing_deleted())
    ),
    "Task": NodeType(TaskRepository, sees_task, lambda r: r.visible_in(_seeing_deleted())),
    "AuditEvent": NodeType(
        AuditEventRepository,
        _audit_visible,
        lambda r: r.readable_in(policy.roles_allowed(policy.Action.READ_AUDIT)),
    ),
}


async def _node(info: strawberry.Info, global_id: str) -> Node | None:
    parsed = from_global_id(global_id)
    if parsed is None or parsed[0] not in NODE_TYPES:
        return None
    type_name, id = parsed
    kind = NODE_TYPES[type_name]
    ctx: Context = info.context
    found = await ctx.loaders.by_id(kind.repository).load(id)
    if found is None or (kind.visible is not None and not await kind.visible(ctx, found)):
        return None
    return object_type(info, type_name).from_model(found)  # type: ignore[no-any-return]


async def node(info: strawberry.Info, id: strawberry.ID) -> Node | None:
    return await _node(info, id)


async def nodes(info: strawberry.Info, ids: list[strawberry.ID]) -> list[Node | None]:
    if len(ids) > MAX_NODES:
        raise InvalidInput(f"at most {MAX_NODES} ids at a time", field=["ids"])
    # Gathered, so the DataLoaders batch every id of a type into one statement.
    return list(await asyncio.gather(*(_node(info, i) for i in ids)))
