"""What the subscribers of one process need of a batch of task events, loaded once for all of
them: the task rows, their projects, the users the events name (actor, assignee, creator) and
the current roles of every subscriber, in one short session (four statements per batch, however
many subscribers and events).

The rows are read without a viewer's scope (system work); the authorization boundary is applied
per subscriber by LoadedEvent.for_role, with policy.sees_task and the roles read here, so a
subscriber gets exactly what its own scoped reads would have given it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Project, Role, Task, User
from db.repositories import MembershipRepository, ProjectRepository, TaskRepository, UserRepository
from db.session import DbSession
from graphql_api import policy

Event = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event as one subscriber may see it. The model objects are shared, read-only, by
    every subscriber of the process that may see them."""

    event: Event
    role: Role
    task: Task | None  # None when missing or not visible with `role`
    project: Project | None  # the visible task's project
    # Users the event names who belong to the event's workspace: visible to every member.
    users: Mapping[uuid.UUID, User]


@dataclass(frozen=True, slots=True)
class LoadedEvent:
    event: Event
    workspace_id: uuid.UUID
    task: Task | None  # whatever its deletion state; None if missing or in another workspace
    project: Project | None
    roles: Mapping[tuple[uuid.UUID, uuid.UUID], Role]
    users: Mapping[uuid.UUID, User]
    # Every user the event names (actor, assignee, creator) is a member of the workspace, so
    # every subscriber sees the same of them; otherwise who sees them depends on the viewer.
    names_only_members: bool
    by_role: dict[Role, Delivery] = field(default_factory=dict)  # what for_role made

    def for_role(self, role: Role) -> Delivery:
        """The event as a member with `role` may see it (policy.sees_task)."""
        delivery = self.by_role.get(role)
        if delivery is None:
            task = self.task
            if task is not None and not policy.sees_task(role, task.deleted_at is not None):
                task = None
            project = self.project if task is not None else None
            delivery = self.by_role[role] = Delivery(self.event, role, task, project, self.users)
        return delivery


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except (TypeError, ValueError):
        return None


class EventLoader:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def load(
        self, events: list[Event], viewers: Mapping[uuid.UUID, set[uuid.UUID]]
    ) -> list[LoadedEvent]:
        """`viewers`: the subscribers' user ids per workspace. Returns one LoadedEvent per event,
        in order."""
        task_ids = {t for e in events if (t := _uuid(e.get("task"))) is not None}
        async with self.sessionmaker() as session:
            db = DbSession(session)
            tasks = {t.id: t for t in await TaskRepository(db).get_many(list(task_ids)) if t}
            project_ids = list({t.project_id for t in tasks.values()})
            projects = {p.id: p for p in await ProjectRepository(db).get_many(project_ids) if p}
            named: set[uuid.UUID] = {a for e in events if (a := _uuid(e.get("actor")))}
            for row in tasks.values():
                named.update(u for u in (row.assignee_id, row.created_by_id) if u is not None)
            users = {u.id: u for u in await UserRepository(db).get_many(list(named)) if u}
            everyone = set(named).union(*viewers.values()) if viewers else set(named)
            roles = await MembershipRepository(db).roles_of(viewers.keys(), everyone)
        loaded = []
        for event in events:
            workspace_id = _uuid(event.get("workspace"))
            assert workspace_id is not None, "the hub routes events by workspace"
            task = tasks.get(_uuid(event.get("task")))  # type: ignore[arg-type]
            if task is not None and task.workspace_id != workspace_id:
                task = None  # never trust a payload over the row
            members = {
                user_id: user for user_id, user in users.items() if (workspace_id, user_id) in roles
            }
            names = {_uuid(event.get("actor"))}
            if task is not None:
                names.update((task.assignee_id, task.created_by_id))
            names.discard(None)
            loaded.append(
                LoadedEvent(
                    event,
                    workspace_id,
                    task,
                    projects.get(task.project_id) if task is not None else None,
                    roles,
                    members,
                    names <= members.keys(),
                )
            )
        return loaded
