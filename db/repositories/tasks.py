from __future__ import annotations

import uuid
from typing import Any, ClassVar

from sqlalchemy import Select, delete, insert

from db.models import Task, TaskLabel
from db.repositories.base import Repository
from db.repositories.keyset import KeysetOrder, SortKey

_ORDER_COLUMNS = {
    "CREATED_AT": (Task.created_at, "created_at", False),
    "UPDATED_AT": (Task.updated_at, "updated_at", False),
    "DUE_AT": (Task.due_at, "due_at", True),
    "PRIORITY": (Task.priority, "priority", False),
    "NUMBER": (Task.number, "number", False),
}


def task_order(field: str = "CREATED_AT", descending: bool = False) -> KeysetOrder:
    """Every task ordering, with id as the tie-breaker so the order is total."""
    column, attr, nullable = _ORDER_COLUMNS[field]
    direction = "DESC" if descending else "ASC"
    keys = [SortKey(column, attr, descending=descending, nullable=nullable)]
    if field != "NUMBER":  # number is unique within a project already
        keys.append(SortKey(Task.id, "id", descending=descending))
    return KeysetOrder(f"tasks:{field}:{direction}", tuple(keys))


TASK_ORDERS = {
    (field, desc): task_order(field, desc) for field in _ORDER_COLUMNS for desc in (False, True)
}


class TaskRepository(Repository[Task]):
    model: ClassVar[type[Task]] = Task
    entity = "task"

    def in_project(self, project_id: uuid.UUID, include_deleted: bool = False) -> Select[Any]:
        stmt = self.select().where(Task.project_id == project_id)
        return stmt if include_deleted else stmt.where(Task.deleted_at.is_(None))

    async def set_labels(self, task: Task, label_ids: list[uuid.UUID]) -> None:
        await self.db.execute(delete(TaskLabel).where(TaskLabel.task_id == task.id))
        if label_ids:
            rows = [
                {"task_id": task.id, "label_id": lid, "workspace_id": task.workspace_id}
                for lid in dict.fromkeys(label_ids)
            ]
            await self.db.execute(insert(TaskLabel), rows)
