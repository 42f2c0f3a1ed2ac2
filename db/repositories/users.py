from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import aliased

from db.models import Membership, User
from db.repositories.base import Repository


class UserRepository(Repository[User]):
    model: ClassVar[type[User]] = User
    entity = "user"

    def restrict(self, stmt: Select[Any]) -> Select[Any]:
        """A user is visible to themself and to the members of a workspace they share."""
        if self.scope is None:
            return stmt
        # Per user row, one probe of the (user_id, workspace_id) index joined to the viewer's
        # memberships: cheaper, row for row, than testing membership in the set of co-members.
        theirs, mine = aliased(Membership), aliased(Membership)
        shares = (
            select(theirs.user_id)
            .join(mine, mine.workspace_id == theirs.workspace_id)
            .where(theirs.user_id == User.id, mine.user_id == self.scope.user_id)
            .exists()
        )
        return stmt.where(or_(User.id == self.scope.user_id, shares))

    async def get_by_email(self, email: str) -> User | None:
        rows = await self.db.scalars(self.select().where(User.email == email))
        return rows[0] if rows else None
