from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from sqlalchemy import ColumnElement, Select, select

from db.models import Comment, Role, Task
from db.repositories.base import Repository
from db.repositories.keyset import KeysetOrder, SortKey
from db.repositories.tasks import TaskRepository

COMMENT_ORDER = KeysetOrder(
    "comments", (SortKey(Comment.created_at, "created_at"), SortKey(Comment.id, "id"))
)


class CommentRepository(Repository[Comment]):
    model: ClassVar[type[Comment]] = Comment
    entity = "comment"

    def select(self) -> Select[Any]:
        return super().select().where(Comment.deleted_at.is_(None))

    def of_visible_task(self, seeing_deleted: Sequence[Role]) -> ColumnElement[bool]:
        """Comments follow their task: SQL twin of policy.sees_task applied to the comment's."""
        visible = TaskRepository(self.db, self.scope).visible_in(seeing_deleted)
        return select(Task.id).where(Task.id == Comment.task_id, visible).exists()
