"""Persisted documents: looked up by id, registered by APQ (bounded), imported as trusted."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert

from db.models import PersistedDocument
from db.repositories.base import Repository


class PersistedDocumentRepository(Repository[PersistedDocument]):
    model: ClassVar[type[PersistedDocument]] = PersistedDocument
    entity = "persisted document"

    async def load(self, document_id: str) -> tuple[str, bool] | None:
        """(document, trusted), noting that a process loaded it now (eviction goes by that)."""
        row = (
            await self.db.execute(
                update(PersistedDocument)
                .where(PersistedDocument.id == document_id)
                .values(last_used_at=func.now())
                .returning(PersistedDocument.document, PersistedDocument.trusted)
            )
        ).one_or_none()
        return None if row is None else (row.document, row.trusted)

    async def register(self, document_id: str, document: str, keep: int) -> int:
        """Store an APQ document (a trusted one with that id stays as it is), then evict the
        least recently loaded APQ documents beyond `keep`. Returns how many were evicted."""
        await self.db.execute(
            insert(PersistedDocument)
            .values(id=document_id, document=document, trusted=False)
            .on_conflict_do_nothing(index_elements=[PersistedDocument.id])
        )
        beyond = (
            select(PersistedDocument.id)
            .where(PersistedDocument.trusted.is_(False))
            .order_by(PersistedDocument.last_used_at.desc(), PersistedDocument.id)
            .offset(keep)
        )
        result = await self.db.execute(
            delete(PersistedDocument).where(PersistedDocument.id.in_(beyond))
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def import_trusted(self, documents: Mapping[str, str]) -> int:
        """Insert or replace each as trusted (an APQ document with the same id becomes trusted)."""
        for document_id, document in documents.items():
            stmt = insert(PersistedDocument).values(id=document_id, document=document, trusted=True)
            await self.db.execute(
                stmt.on_conflict_do_update(
                    index_elements=[PersistedDocument.id],
                    set_={"document": stmt.excluded.document, "trusted": True},
                )
            )
        return len(documents)

    async def count_kind(self, trusted: bool) -> int:
        return int(
            await self.db.scalar(select(func.count()).where(PersistedDocument.trusted.is_(trusted)))
            or 0
        )
