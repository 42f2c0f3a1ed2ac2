from __future__ import annotations

from typing import ClassVar

from db.models import User
from db.repositories.base import Repository


class UserRepository(Repository[User]):
    model: ClassVar[type[User]] = User
    entity = "user"

    async def get_by_email(self, email: str) -> User | None:
        rows = await self.db.scalars(self.select().where(User.email == email))
        return rows[0] if rows else None
