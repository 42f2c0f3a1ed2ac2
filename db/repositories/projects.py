from __future__ import annotations

import uuid
from typing import Any, ClassVar

from sqlalchemy import Select, select

from db.models import Project
from db.repositories.base import Repository
from db.repositories.keyset import KeysetOrder, SortKey

PROJECT_ORDER = KeysetOrder(
    "projects", (SortKey(Project.created_at, "created_at"), SortKey(Project.id, "id"))
)


class ProjectRepository(Repository[Project]):
    model: ClassVar[type[Project]] = Project
    entity = "project"

    async def get_by_key(self, workspace_id: uuid.UUID, key: str) -> Project | None:
        rows = await self.db.scalars(self.by_key(workspace_id, key))
        return rows[0] if rows else None

    def listed(self, include_archived: bool) -> Select[Any]:
        """Projects as a workspace lists them: archived ones only when asked for."""
        stmt = self.select()
        return stmt if include_archived else stmt.where(Project.archived_at.is_(None))

    def by_key(self, workspace_id: Any, key: str) -> Select[Any]:
        """The workspace's project with this key (keys are stored upper-case)."""
        return self.select().where(Project.workspace_id == workspace_id, Project.key == key.upper())

    @staticmethod
    def key_of(project_id: Any) -> Select[Any]:
        """The key of one project (for a task's identifier): a scalar statement."""
        return select(Project.key).where(Project.id == project_id)
