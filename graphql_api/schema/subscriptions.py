"""What Subscription.taskEvents sends: a TaskEvent for each task change. Its resolver is
graphql_api/resolvers/subscriptions.py; how each event is made and executed, graphql_api/events/
(event_execution.py, group_execution.py)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

import strawberry

from db import models
from graphql_api.context import Context
from graphql_api.schema.types import Task, User


@strawberry.enum
class TaskEventKind(enum.Enum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    DELETED = "DELETED"
    RESTORED = "RESTORED"


@strawberry.type
class TaskEvent:
    kind: TaskEventKind
    task: Task | None = strawberry.field(description="Null when you may no longer see it.")
    task_id: strawberry.ID
    at: datetime
    _actor_id: strawberry.Private[uuid.UUID | None]
    # The actor as the hub loaded it, when this subscriber may see them (a co-member).
    _actor: strawberry.Private[models.User | None] = None

    @strawberry.field(graphql_type=User | None)
    def actor(self, info: strawberry.Info) -> Any:
        # Synchronous when preloaded (the common case): no coroutine for the executor to await.
        if self._actor_id is None:
            return None
        if self._actor is not None:
            return User.from_model(self._actor)
        return self._load_actor(info)

    async def _load_actor(self, info: strawberry.Info) -> User | None:
        assert self._actor_id is not None
        ctx: Context = info.context
        found = await ctx.loaders.users.load(self._actor_id)
        return User.from_model(found) if found else None
