"""Login throttling per account and per client address, kept in PostgreSQL.

Failures are written in a transaction of their own, committed at once: they must count even
though the failed login itself leaves nothing behind, across workers and restarts alike. Mutation
fields run one after another, so 100 aliased logins in one request meet the lock after a few.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.repositories.login_throttles import LoginThrottleRepository
from db.session import DbSession
from graphql_api.errors import RateLimited
from graphql_api.settings import Settings


class LoginThrottle:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessionmaker = sessionmaker
        self.window = timedelta(seconds=settings.login_window_s)
        self.limits = {
            "email": settings.login_max_failures,
            "ip": settings.login_max_failures_per_ip,
        }

    @staticmethod
    def keys(email: str, ip: str) -> dict[str, str]:
        return {"email": f"email:{email}", "ip": f"ip:{ip}"}

    async def check(self, keys: dict[str, str]) -> None:
        async with self.sessionmaker() as session:
            until = await LoginThrottleRepository(DbSession(session)).locked_until(
                list(keys.values())
            )
        if until is not None:
            minutes = max(1, math.ceil((until - datetime.now(UTC)).total_seconds() / 60))
            raise RateLimited(f"too many failed sign-in attempts; try again in {minutes} minute(s)")

    async def failed(self, keys: dict[str, str]) -> None:
        async with self.sessionmaker() as session:
            repo = LoginThrottleRepository(DbSession(session))
            for kind, key in keys.items():
                await repo.record_failure(key, self.limits[kind], self.window)
            await session.commit()

    async def succeeded(self, keys: dict[str, str]) -> None:
        async with self.sessionmaker() as session:
            await LoginThrottleRepository(DbSession(session)).reset(keys["email"])
            await session.commit()
