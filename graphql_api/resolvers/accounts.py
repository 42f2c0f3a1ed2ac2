"""register, login, refreshSession, logout: open to anonymous callers."""

from __future__ import annotations

import strawberry

from graphql_api import validation
from graphql_api.auth import accounts
from graphql_api.resolvers.mutation import mutation
from graphql_api.schema.inputs import LoginInput, LogoutInput, RefreshSessionInput, RegisterInput
from graphql_api.schema.payloads import AuthPayload, LogoutPayload
from graphql_api.schema.types import User


def _payload(session: accounts.Session) -> AuthPayload:
    return AuthPayload(
        access_token=session.access_token,
        refresh_token=session.refresh_token,
        expires_at=session.expires_at,
        user=User.from_model(session.user),
    )


@mutation(AuthPayload)
async def register(info: strawberry.Info, input: RegisterInput) -> AuthPayload:
    email = validation.email(input.email, ["input", "email"])
    password = validation.password(input.password, ["input", "password"])
    name = validation.text(
        input.display_name, ["input", "displayName"], max_length=100, what="the display name"
    )
    return _payload(await accounts.register(info.context, email, password, name))


@mutation(AuthPayload)
async def login(info: strawberry.Info, input: LoginInput) -> AuthPayload:
    # A malformed email is simply one that matches no account: the same answer.
    email = input.email.strip().lower()
    return _payload(await accounts.login(info.context, email, input.password))


@mutation(AuthPayload)
async def refresh_session(info: strawberry.Info, input: RefreshSessionInput) -> AuthPayload:
    return _payload(await accounts.refresh(info.context, input.refresh_token))


@mutation(LogoutPayload)
async def logout(info: strawberry.Info, input: LogoutInput) -> LogoutPayload:
    await accounts.logout(info.context, input.refresh_token)
    return LogoutPayload(success=True)
