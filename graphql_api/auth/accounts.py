"""Registration, sign-in, refresh-token rotation and sign-out."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from db.ids import uuid7
from db.models import RefreshToken, User
from db.repositories import RefreshTokenRepository, UserRepository
from db.session import DbSession
from graphql_api import audit
from graphql_api.auth import passwords
from graphql_api.auth.throttle import LoginThrottle
from graphql_api.auth.tokens import hash_refresh_token, issue_access_token, new_refresh_token
from graphql_api.context import Context
from graphql_api.errors import InvalidCredentials

WRONG_CREDENTIALS = "the email or password is incorrect"
BAD_REFRESH = "the refresh token is not valid; sign in again"


@dataclass
class Session:
    user: User
    access_token: str
    refresh_token: str
    expires_at: datetime


async def _issue(ctx: Context, user: User, family_id: uuid.UUID | None = None) -> Session:
    settings = ctx.settings
    access, expires = issue_access_token(user.id, settings.secret_key, settings.access_token_ttl_s)
    token, token_hash = new_refresh_token()
    await RefreshTokenRepository(ctx.db).add(
        RefreshToken(
            user_id=user.id,
            family_id=family_id or uuid7(),
            token_hash=token_hash,
            expires_at=datetime.now(UTC) + timedelta(seconds=settings.refresh_token_ttl_s),
        )
    )
    return Session(user, access, token, expires)


async def register(ctx: Context, email: str, password: str, display_name: str) -> Session:
    password_hash = await asyncio.to_thread(passwords.hash_password, password)
    user = await UserRepository(ctx.db).add(
        User(email=email, password_hash=password_hash, display_name=display_name)
    )
    await audit.record(ctx, "user.register", "User", user.id, workspace_id=None, actor_id=user.id)
    return await _issue(ctx, user)


async def login(ctx: Context, email: str, password: str) -> Session:
    throttle = LoginThrottle(ctx)
    keys = throttle.keys(email, ctx.client_ip)
    await throttle.check(keys)
    users = UserRepository(ctx.db)
    user = await users.get_by_email(email)
    # Verified against a dummy hash when the email is unknown: same answer, same cost.
    stored = user.password_hash if user else None
    ok = await asyncio.to_thread(passwords.verify_password, stored, password)
    if user is None or not ok:
        throttle.failed(keys)
        raise InvalidCredentials(WRONG_CREDENTIALS)
    await throttle.succeeded(keys)
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = await asyncio.to_thread(passwords.hash_password, password)
        await users.flush(user)
    await audit.record(ctx, "user.login", "User", user.id, workspace_id=None, actor_id=user.id)
    return await _issue(ctx, user)


async def refresh(ctx: Context, token: str) -> Session:
    """Rotate: the presented token is spent and a new one of the same family issued. A token
    presented a second time means it was copied: the whole family is revoked."""
    repo = RefreshTokenRepository(ctx.db)
    record = await repo.get_by_hash(hash_refresh_token(token))
    now = datetime.now(UTC)
    if record is None or record.revoked_at is not None or record.expires_at <= now:
        raise InvalidCredentials(BAD_REFRESH)
    if not await repo.claim(record.id, now):
        # Reuse: revoke the family although this field fails. Kept, in the request's own
        # transaction (Context.keep_write): the token may have been spent by a sibling alias of
        # this very request, whose row lock a second session would wait on until the timeout.
        family_id = record.family_id

        async def revoke(db: DbSession) -> None:
            await RefreshTokenRepository(db).revoke_family(family_id, now)

        ctx.keep_write(revoke)
        raise InvalidCredentials(BAD_REFRESH)
    user = await UserRepository(ctx.db).get(record.user_id)
    if user is None:
        raise InvalidCredentials(BAD_REFRESH)
    await audit.record(ctx, "session.refresh", "User", user.id, workspace_id=None, actor_id=user.id)
    return await _issue(ctx, user, family_id=record.family_id)


async def logout(ctx: Context, token: str) -> None:
    """Revoke the token's whole family (this sign-in on every device that shares it).
    Idempotent: an unknown or spent token is simply already signed out."""
    repo = RefreshTokenRepository(ctx.db)
    record = await repo.get_by_hash(hash_refresh_token(token))
    if record is None:
        return
    await repo.revoke_family(record.family_id, datetime.now(UTC))
    await audit.record(
        ctx, "session.logout", "User", record.user_id, workspace_id=None, actor_id=record.user_id
    )
