from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import ClassVar

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert

from db.models import LoginThrottle
from db.repositories.base import Repository


class LoginThrottleRepository(Repository[LoginThrottle]):
    model: ClassVar[type[LoginThrottle]] = LoginThrottle
    entity = "login throttle"

    async def locked_until(self, keys: Sequence[str]) -> datetime | None:
        """The latest lock among `keys` that is still in force, if any."""
        return await self.db.scalar(  # type: ignore[no-any-return]
            select(func.max(LoginThrottle.locked_until)).where(
                LoginThrottle.key.in_(keys), LoginThrottle.locked_until > func.now()
            )
        )

    async def record_failure(self, key: str, limit: int, window: timedelta) -> None:
        """Count a failure in the current window; lock the key for a window once it hits limit."""
        expired = LoginThrottle.window_started_at < func.now() - window
        new = insert(LoginThrottle).values(key=key, failures=1, window_started_at=func.now())
        stmt = new.on_conflict_do_update(
            index_elements=[LoginThrottle.key],
            set_={
                "failures": case((expired, 1), else_=LoginThrottle.failures + 1),
                "window_started_at": case(
                    (expired, func.now()), else_=LoginThrottle.window_started_at
                ),
            },
        ).returning(LoginThrottle.failures)
        failures = await self.db.scalar(stmt)
        if failures is not None and failures >= limit:
            await self.db.execute(
                update(LoginThrottle)
                .where(LoginThrottle.key == key)
                .values(locked_until=func.now() + window, failures=0, window_started_at=func.now())
            )

    async def reset(self, key: str) -> None:
        await self.db.execute(delete(LoginThrottle).where(LoginThrottle.key == key))
