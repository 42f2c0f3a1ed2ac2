"""Access tokens (signed JWT, short-lived) and refresh tokens (random, stored as a hash)."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections import OrderedDict
from datetime import UTC, datetime, timedelta

import jwt

from graphql_api.settings import Settings

ALGORITHM = "HS256"  # pinned: a token naming any other algorithm (or "none") is refused
ISSUER = "graphql-api"
AUDIENCE = "graphql-api"


def issue_access_token(user_id: uuid.UUID, secret: str, ttl_s: int) -> tuple[str, datetime]:
    now = datetime.now(UTC)
    expires = now + timedelta(seconds=ttl_s)
    claims = {
        "sub": str(user_id),
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM), expires


class _VerifiedTokens:
    """Tokens already verified, with their expiry: a signature is checked once per token, not
    once per request. Bounded; an expired entry is never trusted."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self.entries: OrderedDict[tuple[str, str], tuple[uuid.UUID, float]] = OrderedDict()

    def get(self, key: tuple[str, str]) -> uuid.UUID | None:
        entry = self.entries.get(key)
        if entry is None:
            return None
        user_id, expires = entry
        if time.time() >= expires:
            del self.entries[key]
            return None
        return user_id

    def put(self, key: tuple[str, str], user_id: uuid.UUID, expires: float) -> None:
        self.entries[key] = (user_id, expires)
        if len(self.entries) > self.size:
            self.entries.popitem(last=False)


_VERIFIED = _VerifiedTokens()


def read_access_token(token: str, secret: str) -> uuid.UUID | None:
    """The user id of a valid token; None for anything else, whatever is wrong with it."""
    key = (secret, token)
    cached = _VERIFIED.get(key)
    if cached is not None:
        return cached
    user_id = _verify(token, secret)
    if user_id is not None:
        _VERIFIED.put(key, *user_id)
        return user_id[0]
    return None


def _verify(token: str, secret: str) -> tuple[uuid.UUID, float] | None:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
        return uuid.UUID(str(claims["sub"])), float(claims["exp"])
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        return None


def new_refresh_token() -> tuple[str, bytes]:
    """The token the client keeps, and the hash we store."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> bytes:
    # 256 random bits need no slow hash: SHA-256 is enough to make a stolen table useless.
    return hashlib.sha256(token.encode()).digest()


def expires_at(header: str | None, settings: Settings) -> float | None:
    """When the bearer token of `header`, already authenticated, stops being valid (Unix time)."""
    scheme, _, token = (header or "").partition(" ")
    entry = _VERIFIED.entries.get((settings.secret_key, token.strip()))
    return entry[1] if entry is not None and scheme.lower() == "bearer" else None


def authenticate(header: str | None, settings: Settings) -> tuple[uuid.UUID | None, bool]:
    """(viewer id, whether a credential was presented and refused) from `Authorization`."""
    if not header:
        return None, False
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None, True
    viewer_id = read_access_token(token.strip(), settings.secret_key)
    return viewer_id, viewer_id is None
