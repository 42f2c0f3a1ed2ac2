from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, ClassVar

from sqlalchemy import Select, select

from db.models import Label
from db.repositories.base import Repository
from db.repositories.keyset import KeysetOrder, SortKey

LABEL_ORDER = KeysetOrder(
    "labels", (SortKey(Label.created_at, "created_at"), SortKey(Label.id, "id"))
)


class LabelRepository(Repository[Label]):
    model: ClassVar[type[Label]] = Label
    entity = "label"

    def select(self) -> Select[Any]:
        return super().select().where(Label.deleted_at.is_(None))

    async def missing_from(
        self, workspace_id: uuid.UUID, label_ids: Sequence[uuid.UUID]
    ) -> set[uuid.UUID]:
        """The ids among `label_ids` that are not live labels of the workspace."""
        found = await self.db.scalars(
            select(Label.id).where(
                Label.id.in_(set(label_ids)),
                Label.workspace_id == workspace_id,
                Label.deleted_at.is_(None),
            )
        )
        return set(label_ids) - set(found)
