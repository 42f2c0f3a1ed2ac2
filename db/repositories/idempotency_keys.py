"""Idempotency keys: claimed at the start of a mutation's transaction, answered at its end."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar

from sqlalchemy import delete, func, literal, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert

from db.models import IdempotencyKey
from db.repositories.base import Repository


@dataclass(frozen=True)
class StoredOutcome:
    """A committed, unexpired key: what the first request was and what it answered."""

    fingerprint: bytes
    response: bytes | None


class IdempotencyKeyRepository(Repository[IdempotencyKey]):
    model: ClassVar[type[IdempotencyKey]] = IdempotencyKey
    entity = "idempotency key"

    async def claim(
        self, user_id: uuid.UUID, key: str, fingerprint: bytes, ttl: timedelta
    ) -> StoredOutcome | None:
        """None when the key is this transaction's now (new, or expired and taken over): the
        caller executes. Otherwise the stored outcome, its row locked until this transaction ends.

        A key being used by a transaction still running makes the INSERT wait for it (the unique
        index): it then finds the row that transaction committed, or inserts its own if that one
        rolled back. So two requests with one key never both execute."""
        for _ in range(3):  # a row purged between the two statements: try again
            inserted = await self.db.scalar(
                insert(IdempotencyKey)
                .values(
                    user_id=user_id,
                    key=key,
                    fingerprint=fingerprint,
                    expires_at=func.now() + ttl,
                )
                .on_conflict_do_nothing(index_elements=[IdempotencyKey.user_id, IdempotencyKey.key])
                .returning(literal(True))
            )
            if inserted:
                return None
            row = (
                await self.db.execute(
                    select(
                        IdempotencyKey.fingerprint,
                        IdempotencyKey.response,
                        (IdempotencyKey.expires_at <= func.now()).label("expired"),
                    )
                    .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
                    .with_for_update()
                )
            ).one_or_none()
            if row is None:
                continue
            if row.expired:
                await self.db.execute(
                    update(IdempotencyKey)
                    .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
                    .values(
                        fingerprint=fingerprint,
                        response=None,
                        created_at=func.now(),
                        expires_at=func.now() + ttl,
                    )
                )
                return None
            return StoredOutcome(row.fingerprint, row.response)
        raise RuntimeError(f"idempotency key {key!r} could not be claimed")

    async def store_response(self, user_id: uuid.UUID, key: str, response: bytes) -> None:
        await self.db.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
            .values(response=response)
        )

    async def purge_expired(self, limit: int) -> int:
        """Delete at most `limit` expired keys (any user's), skipping rows others hold."""
        expired = (
            select(IdempotencyKey.user_id, IdempotencyKey.key)
            .where(IdempotencyKey.expires_at <= func.now())
            .order_by(IdempotencyKey.expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        result = await self.db.execute(
            delete(IdempotencyKey).where(
                tuple_(IdempotencyKey.user_id, IdempotencyKey.key).in_(expired)
            )
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
