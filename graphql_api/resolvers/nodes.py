"""node / nodes: any object by its global id, or null when missing or not visible."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import strawberry

from db.errors import InvalidInput
from graphql_api.context import Context
from graphql_api.schema.relay import Node, from_global_id
from graphql_api.schema.types import User, Workspace

MAX_NODES = 100


def _resolvers(ctx: Context) -> dict[str, Callable[[Any], Awaitable[Node | None]]]:
    loaders = ctx.loaders

    async def user(id: Any) -> Node | None:
        found = await loaders.users.load(id)
        return User.from_model(found) if found else None

    async def workspace(id: Any) -> Node | None:
        found = await loaders.workspaces.load(id)
        return Workspace.from_model(found) if found else None

    return {"User": user, "Workspace": workspace}


async def _node(ctx: Context, global_id: str) -> Node | None:
    parsed = from_global_id(global_id)
    if parsed is None:
        return None
    resolve = _resolvers(ctx).get(parsed[0])
    return await resolve(parsed[1]) if resolve else None


async def node(info: strawberry.Info, id: strawberry.ID) -> Node | None:
    return await _node(info.context, id)


async def nodes(info: strawberry.Info, ids: list[strawberry.ID]) -> list[Node | None]:
    if len(ids) > MAX_NODES:
        raise InvalidInput(f"at most {MAX_NODES} ids at a time", field=["ids"])
    # Gathered, so the DataLoaders batch every id of a type into one statement.
    return list(await asyncio.gather(*(_node(info.context, i) for i in ids)))
