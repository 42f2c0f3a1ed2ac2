"""The GraphQL schema."""

from __future__ import annotations

import strawberry

from graphql_api.resolvers.viewer import resolve_viewer
from graphql_api.schema.types import User
from graphql_api.schema.unit_of_work import UnitOfWork


@strawberry.type
class Query:
    viewer: User | None = strawberry.field(
        resolver=resolve_viewer, description="The signed-in user; null when anonymous."
    )


schema = strawberry.Schema(query=Query, extensions=[UnitOfWork])
