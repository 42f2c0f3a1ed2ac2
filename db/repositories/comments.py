from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import Select

from db.models import Comment
from db.repositories.base import Repository
from db.repositories.keyset import KeysetOrder, SortKey

COMMENT_ORDER = KeysetOrder(
    "comments", (SortKey(Comment.created_at, "created_at"), SortKey(Comment.id, "id"))
)


class CommentRepository(Repository[Comment]):
    model: ClassVar[type[Comment]] = Comment
    entity = "comment"

    def select(self) -> Select[Any]:
        return super().select().where(Comment.deleted_at.is_(None))
