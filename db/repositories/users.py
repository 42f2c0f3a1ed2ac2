from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import Select, or_, select

from db.models import Membership, User
from db.repositories.base import Repository


class UserRepository(Repository[User]):
    model: ClassVar[type[User]] = User
    entity = "user"

    def restrict(self, stmt: Select[Any]) -> Select[Any]:
        """A user is visible to themself and to the members of a workspace they share."""
        if self.scope is None:
            return stmt
        # Per user row, a probe of the (user_id, workspace_id) index: cheaper, row for row, than
        # testing membership in the set of co-members.
        shares = (
            select(Membership.user_id)
            .where(
                Membership.user_id == User.id,
                Membership.workspace_id.in_(self.scope.workspace_ids()),
            )
            .exists()
        )
        return stmt.where(or_(User.id == self.scope.user_id, shares))

    async def get_by_email(self, email: str) -> User | None:
        rows = await self.db.scalars(self.select().where(User.email == email))
        return rows[0] if rows else None
