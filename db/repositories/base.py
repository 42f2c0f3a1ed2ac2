"""The generic repository: the only code that builds SQL. Flushes, never commits."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import Select, func, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlalchemy.orm.exc import StaleDataError

from db.base import Base, SoftDeleteMixin
from db.errors import translate
from db.models import Membership
from db.repositories.keyset import (
    KeysetOrder,
    Page,
    PageArgs,
    build_page,
    fetch_size,
    paginate_statement,
)
from db.session import DbSession

M = TypeVar("M", bound=Base)


@dataclass(frozen=True)
class Scope:
    """Whose eyes a repository reads with: only rows of the workspaces this user belongs to.

    The membership subquery is evaluated inside every statement, so a membership change is
    visible to the very next read of the same request.
    """

    user_id: uuid.UUID
    # Rows reached through a parent row this viewer already sees (a connection's children in
    # the compiled statement): the parent carried the tenant boundary, so `restrict` adds none
    # (a correlated repeat of it makes PostgreSQL plan the statement anew on every execution);
    # rules that depend on the viewer (roles, shared workspaces) still apply.
    within_parent: bool = False
    # The statement reads at most one row through this repository (a reference outside any
    # list, in a compiled statement): a rule that tests rows against a set it gathers once per
    # execution may probe each row instead (UserRepository).
    one_row: bool = False

    def workspace_ids(self) -> Select[Any]:
        return select(Membership.workspace_id).where(Membership.user_id == self.user_id)


class Repository(Generic[M]):
    """`scope=None` reads everything: only for system work (sign-in, seeding), never a viewer."""

    model: ClassVar[type[Any]]
    entity: ClassVar[str] = "record"

    def __init__(self, db: DbSession, scope: Scope | None = None) -> None:
        self.db = db
        self.scope = scope

    def select(self) -> Select[tuple[M]]:
        """The base query; subclasses narrow it further (soft-deleted rows)."""
        return self.restrict(select(self.model))

    def restrict(self, stmt: Select[Any]) -> Select[Any]:
        """The tenant boundary: every tenant-owned row carries workspace_id."""
        if self.scope is None or self.scope.within_parent:
            return stmt
        return stmt.where(self.model.workspace_id.in_(self.scope.workspace_ids()))

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

    async def page(self, stmt: Select[Any], order: KeysetOrder, args: PageArgs) -> Page[M]:
        rows = await self.db.scalars(paginate_statement(stmt, order, args))
        return build_page(rows, order, args)

    async def page_many(
        self,
        stmt: Select[Any],
        parent: Any,
        parent_ids: Sequence[Any],
        order: KeysetOrder,
        args: PageArgs,
    ) -> list[Page[M]]:
        """One page for each parent, all in one statement (a window per parent), in the order
        of `parent_ids`: what a DataLoader needs to serve nested connections without N+1."""
        if not parent_ids:
            return []
        args = args.validated()
        inner_stmt = paginate_statement(stmt.where(parent.in_(set(parent_ids))), order, args)
        rank = func.row_number().over(partition_by=parent, order_by=order.order_by(args.backwards))
        inner = inner_stmt.limit(None).order_by(None).add_columns(rank.label("_rank")).subquery()
        entity = aliased(self.model, inner)
        rows = await self.db.scalars(
            select(entity).where(inner.c._rank <= fetch_size(args)).order_by(inner.c._rank)
        )
        groups: dict[Any, list[M]] = defaultdict(list)
        for row in rows:
            groups[getattr(row, parent.key)].append(row)
        return [build_page(groups.get(pid, []), order, args) for pid in parent_ids]

    async def count_many(
        self, stmt: Select[Any], parent: Any, parent_ids: Sequence[Any]
    ) -> list[int]:
        """How many rows each parent has under `stmt`, in one GROUP BY."""
        if not parent_ids:
            return []
        sub = stmt.where(parent.in_(set(parent_ids))).order_by(None).subquery()
        rows = await self.db.execute(
            select(sub.c[parent.key], func.count()).group_by(sub.c[parent.key])
        )
        counts: dict[Any, int] = dict(rows.all())  # type: ignore[arg-type]
        return [int(counts.get(pid, 0)) for pid in parent_ids]

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
        session = self.db.session
        # begin_nested() flushes whatever is pending before it emits its SAVEPOINT: changes
        # already made to loaded rows would be written outside it, and a refused one would fail
        # the whole transaction. Hold them back and make them again inside.
        held = [(obj, _take_changes(obj)) for obj in objs if inspect(obj).persistent]
        try:
            async with self.db.lock, session.begin_nested():
                for obj, changes in held:
                    for key, value in changes.items():
                        setattr(obj, key, value)
                session.add_all(objs)
                await session.flush()
        except (IntegrityError, StaleDataError) as exc:
            # New objects left the session with the SAVEPOINT; changed rows are expired: load
            # them again as the database has them (nothing may load lazily later).
            async with self.db.lock:
                for obj, _ in held:
                    await session.refresh(obj)
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


def _take_changes(obj: Any) -> dict[str, Any]:
    """The attributes changed on a loaded row, which are then expired (their pending values
    dropped without any SQL) so that the caller can set them again."""
    state = inspect(obj)
    changes = {attr.key: attr.value for attr in state.attrs if attr.history.has_changes()}
    if changes:
        state.session.expire(obj, list(changes))
    return changes
