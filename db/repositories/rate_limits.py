from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert

from db.models import RateLimit
from db.repositories.base import Repository


class RateLimitRepository(Repository[RateLimit]):
    model: ClassVar[type[RateLimit]] = RateLimit
    entity = "rate limit"

    async def reserve(
        self, key: str, window_start: datetime, want: int, budget: int
    ) -> tuple[int, int]:
        """Take up to `want` points of `key`'s budget in this window: (granted, reserved in all).
        The row lock makes concurrent reservations from several processes add up exactly."""
        await self.db.execute(
            insert(RateLimit)
            .values(key=key, window_start=window_start, reserved=0)
            .on_conflict_do_nothing(index_elements=[RateLimit.key])
        )
        row = (
            await self.db.execute(
                select(RateLimit.window_start, RateLimit.reserved)
                .where(RateLimit.key == key)
                .with_for_update()
            )
        ).one()
        reserved = row.reserved if row.window_start >= window_start else 0
        granted = max(0, min(want, budget - reserved))
        await self.db.execute(
            update(RateLimit)
            .where(RateLimit.key == key)
            .values(window_start=window_start, reserved=reserved + granted)
        )
        return granted, reserved + granted
