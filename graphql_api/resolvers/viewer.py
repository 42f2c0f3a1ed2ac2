from __future__ import annotations

import strawberry

from graphql_api.context import Context
from graphql_api.errors import unauthenticated
from graphql_api.schema.types import User


async def resolve_viewer(info: strawberry.Info) -> User | None:
    """The signed-in user; null when anonymous. A bad token is an error, so that a client
    learns to refresh it rather than silently seeing a signed-out view."""
    ctx: Context = info.context
    if ctx.bad_token:
        raise unauthenticated()
    if ctx.viewer_id is None:
        return None
    user = await ctx.loaders.users.load(ctx.viewer_id)
    return User.from_model(user) if user else None
