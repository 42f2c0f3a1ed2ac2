from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar

from sqlalchemy import update

from db.models import RefreshToken
from db.repositories.base import Repository


class RefreshTokenRepository(Repository[RefreshToken]):
    model: ClassVar[type[RefreshToken]] = RefreshToken
    entity = "refresh token"

    async def get_by_hash(self, token_hash: bytes) -> RefreshToken | None:
        rows = await self.db.scalars(self.select().where(RefreshToken.token_hash == token_hash))
        return rows[0] if rows else None

    async def claim(self, token_id: uuid.UUID, at: datetime) -> bool:
        """Spend a token exactly once: of two concurrent claims, one wins."""
        claimed = await self.db.scalar(
            update(RefreshToken)
            .where(
                RefreshToken.id == token_id,
                RefreshToken.used_at.is_(None),
                RefreshToken.revoked_at.is_(None),
            )
            .values(used_at=at)
            .returning(RefreshToken.id)
        )
        return claimed is not None

    async def revoke_family(self, family_id: uuid.UUID, at: datetime) -> None:
        await self.db.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=at)
        )
