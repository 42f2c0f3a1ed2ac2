"""The generic repository: the only code that builds SQL. Flushes, never commits."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from db.base import Base, SoftDeleteMixin
from db.errors import translate
from db.repositories.keyset import KeysetOrder, Page, PageArgs, build_page, paginate_statement
from db.session import DbSession

M = TypeVar("M", bound=Base)


class Repository(Generic[M]):
    model: ClassVar[type[Any]]
    entity: ClassVar[str] = "record"

    def __init__(self, db: DbSession) -> None:
        self.db = db

    def select(self) -> Select[tuple[M]]:
        """The base query; subclasses narrow it (soft-deleted rows, tenant scope)."""
        return select(self.model)

    async def get(self, id: uuid.UUID) -> M | None:
        rows = await self.db.scalars(self.select().where(self.model.id == id))
        return rows[0] if rows else None

    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[M | None]:
        """One query for all ids; results in the order of `ids`, None where missing."""
        if not ids:
            return []
        rows = await self.db.scalars(self.select().where(self.model.id.in_(set(ids))))
        by_id = {row.id: row for row in rows}
        return [by_id.get(i) for i in ids]

    async def list_by_parent_ids(
        self, parent: ColumnElement[Any], parent_ids: Sequence[Any], *order: ColumnElement[Any]
    ) -> list[list[M]]:
        """Children of many parents in one query, grouped in the order of `parent_ids`."""
        if not parent_ids:
            return []
        stmt = self.select().where(parent.in_(set(parent_ids))).order_by(*order)
        groups: dict[Any, list[M]] = defaultdict(list)
        key = str(parent.key)
        for row in await self.db.scalars(stmt):
            groups[getattr(row, key)].append(row)
        return [groups.get(pid, []) for pid in parent_ids]

    async def page(self, stmt: Select[Any], order: KeysetOrder, args: PageArgs) -> Page[M]:
        rows = await self.db.scalars(paginate_statement(stmt, order, args))
        return build_page(rows, order, args)

    async def count(self, stmt: Select[Any]) -> int:
        count = select(func.count()).select_from(stmt.order_by(None).subquery())
        return int(await self.db.scalar(count) or 0)

    async def add(self, obj: M) -> M:
        await self.flush(obj)
        return obj

    async def add_all(self, objs: Iterable[M]) -> None:
        await self.flush(*objs)

    async def flush(self, *objs: Any) -> None:
        """Add `objs` (new or changed) and flush, turning constraint violations and stale
        versions into domain errors. The work runs in a SAVEPOINT, so after a violation the
        request's transaction is still usable (and the failed objects are gone from it)."""
        try:
            async with self.db.lock, self.db.session.begin_nested():
                self.db.session.add_all(objs)
                await self.db.session.flush()
        except (IntegrityError, StaleDataError) as exc:
            raise translate(exc, self.entity) from exc

    async def delete(self, obj: M) -> M:
        """Soft delete: the row stays, default queries stop seeing it."""
        assert isinstance(obj, SoftDeleteMixin), f"{self.entity} has no soft delete"
        obj.deleted_at = datetime.now(UTC)
        await self.flush(obj)
        return obj

    async def restore(self, obj: M) -> M:
        assert isinstance(obj, SoftDeleteMixin), f"{self.entity} has no soft delete"
        obj.deleted_at = None
        await self.flush(obj)
        return obj
