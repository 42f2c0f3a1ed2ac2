from __future__ import annotations

import uuid
from typing import Any, ClassVar

from sqlalchemy import Select, select

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

    async def get_by_slug(self, slug: str) -> Workspace | None:
        rows = await self.db.scalars(self.select().where(Workspace.slug == slug))
        return rows[0] if rows else None

    def for_user(self, user_id: uuid.UUID) -> Select[Any]:
        member = select(Membership.workspace_id).where(Membership.user_id == user_id)
        return self.select().where(Workspace.id.in_(member))


class MembershipRepository(Repository[Membership]):
    model: ClassVar[type[Membership]] = Membership
    entity = "membership"

    async def get_for(self, workspace_id: uuid.UUID, user_id: uuid.UUID) -> Membership | None:
        rows = await self.db.scalars(
            self.select().where(
                Membership.workspace_id == workspace_id, Membership.user_id == user_id
            )
        )
        return rows[0] if rows else None

    async def roles_of(self, user_id: uuid.UUID) -> dict[uuid.UUID, Role]:
        rows = await self.db.execute(
            select(Membership.workspace_id, Membership.role).where(Membership.user_id == user_id)
        )
        return {row.workspace_id: row.role for row in rows}

    def in_workspace(self, workspace_id: uuid.UUID) -> Select[Any]:
        return self.select().where(Membership.workspace_id == workspace_id)
