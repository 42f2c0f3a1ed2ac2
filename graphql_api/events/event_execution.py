"""One task event as a subscription executes it: the TaskEvent made from what the hub loaded
(events/loader.Delivery), and the event's unit of work (DataLoaders primed with those rows, a
session opened only if a field needs more)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.session import DbSession
from graphql_api.context import Context
from graphql_api.events.loader import Delivery
from graphql_api.schema.relay import to_global_id
from graphql_api.schema.subscriptions import TaskEvent, TaskEventKind
from graphql_api.schema.types import Task

if TYPE_CHECKING:
    from graphql_api.loaders import Loaders


class LazyDbSession(DbSession):
    """A DbSession whose AsyncSession is made on first use: most events need none."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self._session: AsyncSession | None = None
        self.lock = asyncio.Lock()

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            self._session = self._sessionmaker()
        return self._session

    @session.setter
    def session(self, session: AsyncSession) -> None:
        self._session = session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def task_event(delivery: Delivery) -> TaskEvent:
    event = delivery.event
    actor = event.get("actor")
    actor_id = uuid.UUID(actor) if actor else None
    return TaskEvent(
        kind=TaskEventKind(event["kind"]),
        task=Task.from_model(delivery.task) if delivery.task is not None else None,
        task_id=to_global_id("Task", uuid.UUID(event["task"])),
        at=datetime.fromisoformat(event["at"]),
        _actor_id=actor_id,
        _actor=delivery.users.get(actor_id) if actor_id else None,
    )


@asynccontextmanager
async def event_operation(
    ctx: Context, workspace: uuid.UUID, delivery: Delivery
) -> AsyncIterator[None]:
    """The unit of work of one event: DataLoaders primed with what the hub loaded, and a
    session opened only if a field needs more."""
    db = LazyDbSession(ctx.sessionmaker)
    try:
        with ctx.operation(db):
            prime(ctx.loaders, workspace, delivery)
            yield
    finally:
        await db.close()


def prime(loaders: Loaders, workspace: uuid.UUID, delivery: Delivery) -> None:
    """Seed this event's DataLoaders with what the hub loaded: exactly what the subscriber's own
    scoped reads would return (its role; the task and project only when visible to that role;
    users of the workspace, whom every member sees)."""
    loaders.roles.prime(workspace, delivery.role)
    if delivery.task is not None:
        loaders.tasks.prime(delivery.task.id, delivery.task)
    if delivery.project is not None:
        loaders.projects.prime(delivery.project.id, delivery.project)
    for user_id, user in delivery.users.items():
        loaders.users.prime(user_id, user)
