"""Object types of the API. Each wraps a model; relationship fields load through DataLoaders."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import strawberry

from db import models
from db.repositories import MembershipRepository, PageArgs
from db.repositories.workspaces import MEMBERSHIP_ORDER
from graphql_api.context import Context
from graphql_api.schema.relay import Connection, Node, to_global_id

# Registered with strawberry once; the model's enum is the GraphQL enum.
strawberry.enum(models.Role, description="A member's role in a workspace.")
Role = models.Role


@strawberry.type
class User(Node):
    id: strawberry.ID
    email: str = strawberry.field(
        description="Visible to the user themself and to the members of a shared workspace."
    )
    display_name: str
    created_at: datetime

    @classmethod
    def from_model(cls, user: models.User) -> User:
        return cls(
            id=to_global_id("User", user.id),
            email=user.email,
            display_name=user.display_name,
            created_at=user.created_at,
        )


@strawberry.type
class Membership:
    role: Role
    created_at: datetime
    _user_id: strawberry.Private[uuid.UUID]

    @strawberry.field
    async def user(self, info: strawberry.Info) -> User:
        user = await info.context.loaders.users.load(self._user_id)
        return User.from_model(user)

    @classmethod
    def from_model(cls, membership: models.Membership) -> Membership:
        return cls(
            role=membership.role, created_at=membership.created_at, _user_id=membership.user_id
        )


@strawberry.type
class Workspace(Node):
    id: strawberry.ID
    name: str
    slug: str
    created_at: datetime
    _id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_model(cls, ws: models.Workspace) -> Workspace:
        return cls(
            id=to_global_id("Workspace", ws.id),
            name=ws.name,
            slug=ws.slug,
            created_at=ws.created_at,
            _id=ws.id,
        )

    @strawberry.field(description="The signed-in user's role here.")
    async def viewer_role(self, info: strawberry.Info) -> Role:
        ctx: Context = info.context
        role = await ctx.loaders.roles.load(self._id)
        assert role is not None, "a visible workspace is one the viewer belongs to"
        return role

    @strawberry.field(description="The members, oldest first.")
    async def members(
        self, info: strawberry.Info, first: int | None = None, after: str | None = None
    ) -> Connection[Membership]:
        ctx: Context = info.context
        args = PageArgs(first=first, after=after)

        def base(repo: MembershipRepository) -> Any:
            return repo.select()

        return await ctx.loaders.connection(
            "Workspace.members",
            self._id,
            args,
            repository=MembershipRepository,
            statement=base,
            parent=models.Membership.workspace_id,
            order=MEMBERSHIP_ORDER,
            wrap=Membership.from_model,
        )
