from __future__ import annotations

import strawberry

from graphql_api.schema.types import User


async def resolve_viewer(info: strawberry.Info) -> User | None:
    """The signed-in user; null when anonymous (sign-in arrives with the accounts API)."""
    return None
