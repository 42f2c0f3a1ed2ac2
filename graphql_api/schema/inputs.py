"""Mutation inputs. Names follow the API contract."""

from __future__ import annotations

import strawberry

from graphql_api.schema.types import Role


@strawberry.input
class RegisterInput:
    email: str
    password: str
    display_name: str


@strawberry.input
class LoginInput:
    email: str
    password: str


@strawberry.input
class RefreshSessionInput:
    refresh_token: str


@strawberry.input
class LogoutInput:
    refresh_token: str


@strawberry.input
class CreateWorkspaceInput:
    name: str
    slug: str | None = strawberry.field(
        default=None, description="Derived from the name when omitted."
    )


@strawberry.input
class AddMemberInput:
    workspace_id: strawberry.ID
    email: str
    role: Role


@strawberry.input
class ChangeMemberRoleInput:
    workspace_id: strawberry.ID
    user_id: strawberry.ID
    role: Role


@strawberry.input
class RemoveMemberInput:
    workspace_id: strawberry.ID
    user_id: strawberry.ID
