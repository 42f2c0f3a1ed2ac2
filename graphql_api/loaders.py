"""Per-request DataLoaders: every relationship field batches through these (no N+1)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Hashable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Select
from strawberry.dataloader import DataLoader

from db.models import AuditEvent, Comment, Label, Project, Role, Task, User, Workspace
from db.repositories import (
    AuditEventRepository,
    CommentRepository,
    KeysetOrder,
    LabelRepository,
    MembershipRepository,
    Page,
    PageArgs,
    ProjectRepository,
    Repository,
    TaskRepository,
    UserRepository,
    WorkspaceRepository,
)
from graphql_api.schema.relay import Connection

if TYPE_CHECKING:
    from graphql_api.context import Context

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")


def _loader(fn: Callable[[list[K]], Awaitable[Sequence[V]]]) -> DataLoader[K, V]:
    async def load(keys: list[K]) -> list[V]:
        return list(await fn(keys))

    return DataLoader(load_fn=load)


class Loaders:
    """Each DataLoader is made on first use: an operation (or a subscription event) pays only
    for the ones its selection needs."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._pages: dict[Hashable, DataLoader[Any, Page[Any]]] = {}
        self._by_ids: dict[type[Repository[Any]], DataLoader[uuid.UUID, Any]] = {}
        self._counts: dict[Hashable, DataLoader[Any, int]] = {}

    @property
    def users(self) -> DataLoader[uuid.UUID, User | None]:
        return self.by_id(UserRepository)

    @property
    def workspaces(self) -> DataLoader[uuid.UUID, Workspace | None]:
        return self.by_id(WorkspaceRepository)

    @cached_property
    def roles(self) -> DataLoader[uuid.UUID, Role | None]:
        ctx = self.ctx
        return _loader(lambda ids: MembershipRepository(ctx.db).roles_in(ctx.require_viewer(), ids))

    @property
    def projects(self) -> DataLoader[uuid.UUID, Project | None]:
        return self.by_id(ProjectRepository)

    @property
    def tasks(self) -> DataLoader[uuid.UUID, Task | None]:
        return self.by_id(TaskRepository)

    @property
    def labels(self) -> DataLoader[uuid.UUID, Label | None]:
        return self.by_id(LabelRepository)

    @property
    def comments(self) -> DataLoader[uuid.UUID, Comment | None]:
        return self.by_id(CommentRepository)

    @property
    def audit_events(self) -> DataLoader[uuid.UUID, AuditEvent | None]:
        return self.by_id(AuditEventRepository)

    @cached_property
    def task_labels(self) -> DataLoader[uuid.UUID, list[Label]]:
        ctx = self.ctx
        return _loader(lambda ids: TaskRepository(ctx.db, ctx.scope).labels_of(ids))

    def by_id(self, repository: type[Repository[Any]]) -> DataLoader[uuid.UUID, Any]:
        """Rows of `repository` by id, as the viewer sees them (its scope), None where not."""
        loader = self._by_ids.get(repository)
        if loader is None:
            ctx = self.ctx
            loader = self._by_ids[repository] = _loader(
                lambda ids: repository(ctx.db, ctx.scope).get_many(ids)
            )
        return loader

    async def connection(
        self,
        name: str,
        parent_id: Any,
        args: PageArgs,
        *,
        repository: type[Repository[Any]],
        statement: Callable[[Any], Select[Any]],
        parent: Any,
        order: KeysetOrder,
        wrap: Callable[[Any], T],
        filter_key: Hashable = (),
        with_page: bool = True,
        count: Callable[[Any, list[Any]], Awaitable[list[int]]] | None = None,
    ) -> Connection[T]:
        """A nested connection (e.g. each workspace's members), batched over all the parents
        that ask for the same page arguments: one statement for the pages, one for the counts.
        `with_page=False` (only totalCount was selected) skips the pages. `count(repository,
        parent_ids)` replaces the counting of `statement`'s rows (task counters)."""
        args = args.validated()
        ctx = self.ctx

        def repo() -> Repository[Any]:
            return repository(ctx.db, ctx.scope)

        page_key = (name, args, order.name, filter_key)
        pages = self._pages.get(page_key)
        if pages is None:

            async def load_pages(ids: list[Any]) -> list[Page[Any]]:
                r = repo()
                return await r.page_many(statement(r), parent, ids, order, args)

            pages = self._pages[page_key] = DataLoader(load_fn=load_pages)
        count_key = (name, filter_key)
        counts = self._counts.get(count_key)
        if counts is None:

            async def load_counts(ids: list[Any]) -> list[int]:
                r = repo()
                if count is not None:
                    return await count(r, ids)
                return await r.count_many(statement(r), parent, ids)

            counts = self._counts[count_key] = DataLoader(load_fn=load_counts)
        count_loader = counts
        page = await pages.load(parent_id) if with_page else Page([], [], False, False)
        return Connection.from_page(page, wrap, lambda: count_loader.load(parent_id))

    def clear(self) -> None:
        """After a write: what the viewer may see, and their roles, may have changed."""
        for loader in vars(self).values():
            if isinstance(loader, DataLoader):
                loader.clear_all()
        for loader in self._by_ids.values():
            loader.clear_all()
        self._pages.clear()
        self._counts.clear()
