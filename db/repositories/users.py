from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import Select, literal_column, or_, select
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
        return stmt.where(or_(User.id == self.scope.user_id, self._shares_a_workspace()))

    def _shares_a_workspace(self) -> Any:
        """The user shares a workspace with the viewer. PostgreSQL runs this EXISTS under OR as
        a hashed subplan: the viewer's co-members gathered once per execution, which pays off
        over a list of users (a board's assignees, a history's actors). For one user row
        (Scope.one_row) a probe of that user's memberships is cheaper (task by id: 137 -> 118
        us per execution on the benchmark's data); OFFSET 0 keeps PostgreSQL from turning it
        into the hashed form."""
        assert self.scope is not None
        if not self.scope.one_row:
            return (
                select(Membership.user_id)
                .where(
                    Membership.user_id == User.id,
                    Membership.workspace_id.in_(self.scope.workspace_ids()),
                )
                .exists()
            )
        theirs, mine = aliased(Membership), aliased(Membership)
        return (
            select(literal_column("1"))
            .select_from(theirs)
            .join(mine, mine.workspace_id == theirs.workspace_id)
            .where(theirs.user_id == User.id, mine.user_id == self.scope.user_id)
            .offset(literal_column("0"))
            .exists()
        )

    async def get_by_email(self, email: str) -> User | None:
        rows = await self.db.scalars(self.select().where(User.email == email))
        return rows[0] if rows else None
