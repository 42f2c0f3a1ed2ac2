from __future__ import annotations

import uuid
from typing import ClassVar

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
        rows = await self.db.scalars(
            self.select().where(Project.workspace_id == workspace_id, Project.key == key)
        )
        return rows[0] if rows else None
