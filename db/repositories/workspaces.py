from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from sqlalchemy import Select, delete, func, select

from db.models import Membership, Role, Workspace
from db.repositories.base import Repository
from db.repositories.keyset import KeysetOrder, SortKey

WORKSPACE_ORDER = KeysetOrder(
    "workspaces", (SortKey(Workspace.created_at, "created_at"), SortKey(Workspace.id, "id"))
)
MEMBERSHIP_ORDER = KeysetOrder(
    "members", (SortKey(Membership.created_at, "created_at"), SortKey(Membership.id, "id"))
)


class WorkspaceRepository(Repository[Workspace]):
    model: ClassVar[type[Workspace]] = Workspace
    entity = "workspace"

    def restrict(self, stmt: Select[Any]) -> Select[Any]:
        if self.scope is None:
            return stmt
        return stmt.where(Workspace.id.in_(self.scope.workspace_ids()))

    async def lock(self, workspace_id: uuid.UUID) -> None:
        """Serialise changes to one workspace's memberships (the last-owner rule, and the role
        of whoever changes them). FOR NO KEY UPDATE: writes into the workspace, whose foreign
        keys take KEY SHARE on its row, do not wait for it, so a write that holds its author's
        role (MembershipRepository.role_for_write) and a change of that role, which waits for
        the write, cannot wait on each other."""
        await self.db.execute(
            select(Workspace.id).where(Workspace.id == workspace_id).with_for_update(key_share=True)
        )

    def by_slug(self, slug: str) -> Select[Any]:
        return self.select().where(Workspace.slug == slug)

    async def get_by_slug(self, slug: str) -> Workspace | None:
        rows = await self.db.scalars(self.by_slug(slug))
        return rows[0] if rows else None


class MembershipRepository(Repository[Membership]):
    model: ClassVar[type[Membership]] = Membership
    entity = "membership"

    @staticmethod
    def role_of(user_id: Any, workspace_id: Any) -> Select[Any]:
        """The user's role in one workspace (no row: no member): a scalar statement, the SQL
        twin of roles_in for one workspace."""
        return select(Membership.role).where(
            Membership.workspace_id == workspace_id, Membership.user_id == user_id
        )

    async def role_for_write(self, user_id: uuid.UUID, workspace_id: uuid.UUID) -> Role | None:
        """The user's role in the workspace, for a write they make: share-locked until the
        transaction ends, so a change of that membership (another role, its removal) made
        meanwhile waits for the write to commit, and one committed before is seen. On the
        primary only (a standby takes no locks)."""
        role: Role | None = await self.db.scalar(
            self.role_of(user_id, workspace_id).with_for_update(read=True)
        )
        return role

    async def get_for(self, workspace_id: uuid.UUID, user_id: uuid.UUID) -> Membership | None:
        rows = await self.db.scalars(
            self.select().where(
                Membership.workspace_id == workspace_id, Membership.user_id == user_id
            )
        )
        return rows[0] if rows else None

    async def roles_in(
        self, user_id: uuid.UUID, workspace_ids: Sequence[uuid.UUID]
    ) -> list[Role | None]:
        """The user's role in each workspace, in order; None where they are no member."""
        rows = await self.db.execute(
            select(Membership.workspace_id, Membership.role).where(
                Membership.user_id == user_id, Membership.workspace_id.in_(set(workspace_ids))
            )
        )
        roles = {row.workspace_id: row.role for row in rows}
        return [roles.get(w) for w in workspace_ids]

    async def roles_of(
        self, workspace_ids: Iterable[uuid.UUID], user_ids: Iterable[uuid.UUID]
    ) -> dict[tuple[uuid.UUID, uuid.UUID], Role]:
        """The roles of many users in many workspaces in one statement, keyed by
        (workspace_id, user_id); a pair without a membership is absent."""
        rows = await self.db.execute(
            select(Membership.workspace_id, Membership.user_id, Membership.role).where(
                Membership.workspace_id.in_(set(workspace_ids)),
                Membership.user_id.in_(set(user_ids)),
            )
        )
        return {(row.workspace_id, row.user_id): row.role for row in rows}

    async def count_owners(self, workspace_id: uuid.UUID) -> int:
        return int(
            await self.db.scalar(
                select(func.count()).where(
                    Membership.workspace_id == workspace_id, Membership.role == Role.OWNER
                )
            )
            or 0
        )

    async def remove(self, membership: Membership) -> None:
        await self.db.execute(delete(Membership).where(Membership.id == membership.id))
