"""Object types of the API. Each wraps a model; relationship fields load through DataLoaders,
and nested connections are batched across parents (no N+1)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar, cast

import strawberry
from strawberry.scalars import JSON

from db import models
from db.encodings import task_identifier
from db.repositories import (
    AuditEventRepository,
    CommentRepository,
    KeysetOrder,
    LabelRepository,
    MembershipRepository,
    PageArgs,
    ProjectRepository,
    TaskRepository,
)
from db.repositories.audit_events import AUDIT_ORDER
from db.repositories.comments import COMMENT_ORDER
from db.repositories.labels import LABEL_ORDER
from db.repositories.projects import PROJECT_ORDER
from db.repositories.tasks import TASK_ORDERS
from db.repositories.workspaces import MEMBERSHIP_ORDER
from graphql_api import policy
from graphql_api.context import Context
from graphql_api.schema.filters import TaskFilterInput, TaskOrder, task_filter
from graphql_api.schema.relay import Connection, Node, page_requested, to_global_id

# Registered with strawberry once; the models' enums are the GraphQL enums.
strawberry.enum(models.Role, description="A member's role in a workspace.")
strawberry.enum(models.TaskStatus)
strawberry.enum(models.TaskPriority, description="Sorts NONE < LOW < MEDIUM < HIGH < URGENT.")
Role = models.Role
TaskStatus = models.TaskStatus
TaskPriority = models.TaskPriority


async def _user(info: strawberry.Info, user_id: uuid.UUID | None) -> User | None:
    """A referenced user, or null when there is none or they are no longer visible to you."""
    if user_id is None:
        return None
    ctx: Context = info.context
    found = await ctx.loaders.users.load(user_id)
    return User.from_model(found) if found else None


@strawberry.type
class User(Node):
    id: strawberry.ID
    email: str = strawberry.field(
        description="Visible to the user themself and to the members of a shared workspace."
    )
    display_name: str
    created_at: datetime

    @classmethod
    def from_model(cls, user: models.User) -> User:
        return cls(
            id=to_global_id("User", user.id),
            email=user.email,
            display_name=user.display_name,
            created_at=user.created_at,
        )


@strawberry.type
class Membership:
    role: Role
    created_at: datetime
    _user_id: strawberry.Private[uuid.UUID]

    @strawberry.field
    async def user(self, info: strawberry.Info) -> User:
        user = await _user(info, self._user_id)
        assert user is not None, "members of a visible workspace are visible"
        return user

    @classmethod
    def from_model(cls, m: models.Membership) -> Membership:
        return cls(role=m.role, created_at=m.created_at, _user_id=m.user_id)


@strawberry.type
class Label(Node):
    id: strawberry.ID
    name: str
    color: str = strawberry.field(description="#RRGGBB")
    created_at: datetime

    @classmethod
    def from_model(cls, label: models.Label) -> Label:
        return cls(
            id=to_global_id("Label", label.id),
            name=label.name,
            color=label.color,
            created_at=label.created_at,
        )


@strawberry.type
class AuditEvent(Node):
    id: strawberry.ID
    action: str = strawberry.field(description="e.g. task.update, member.add")
    entity_type: str
    entity_id: strawberry.ID
    at: datetime
    changes: JSON | None = strawberry.field(
        description="Changed fields as {field: [before, after]}."
    )
    _actor_id: strawberry.Private[uuid.UUID | None]

    @strawberry.field
    async def actor(self, info: strawberry.Info) -> User | None:
        return await _user(info, self._actor_id)

    @classmethod
    def from_model(cls, e: models.AuditEvent) -> AuditEvent:
        return cls(
            id=to_global_id("AuditEvent", e.id),
            action=e.action,
            entity_type=e.entity_type,
            entity_id=to_global_id(e.entity_type, e.entity_id),
            at=e.created_at,
            changes=cast(JSON, e.changes),
            _actor_id=e.actor_id,
        )


@strawberry.type
class Comment(Node):
    id: strawberry.ID
    body: str
    created_at: datetime
    updated_at: datetime
    version: int
    _author_id: strawberry.Private[uuid.UUID | None]

    @strawberry.field
    async def author(self, info: strawberry.Info) -> User | None:
        return await _user(info, self._author_id)

    @classmethod
    def from_model(cls, c: models.Comment) -> Comment:
        return cls(
            id=to_global_id("Comment", c.id),
            body=c.body,
            created_at=c.created_at,
            updated_at=c.updated_at,
            version=c.version,
            _author_id=c.author_id,
        )


@strawberry.type
class Task(Node):
    id: strawberry.ID
    number: int
    title: str
    description: str | None
    status: TaskStatus
    priority: TaskPriority
    due_at: datetime | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    version: int = strawberry.field(description="Pass as expectedVersion to updateTask.")
    _model: strawberry.Private[models.Task]

    @classmethod
    def from_model(cls, t: models.Task) -> Task:
        return cls(
            id=to_global_id("Task", t.id),
            number=t.number,
            title=t.title,
            description=t.description,
            status=t.status,
            priority=t.priority,
            due_at=t.due_at,
            created_at=t.created_at,
            updated_at=t.updated_at,
            deleted_at=t.deleted_at,
            version=t.version,
            _model=t,
        )

    async def _project(self, info: strawberry.Info) -> models.Project:
        ctx: Context = info.context
        project = await ctx.loaders.projects.load(self._model.project_id)
        assert project is not None, "the project of a visible task is visible"
        return project

    @strawberry.field(description='"<project key>-<number>", e.g. "WEB-42".')
    async def identifier(self, info: strawberry.Info) -> str:
        return task_identifier((await self._project(info)).key, self.number)

    @strawberry.field
    async def project(self, info: strawberry.Info) -> Project:
        return Project.from_model(await self._project(info))

    @strawberry.field
    async def assignee(self, info: strawberry.Info) -> User | None:
        return await _user(info, self._model.assignee_id)

    @strawberry.field
    async def created_by(self, info: strawberry.Info) -> User | None:
        return await _user(info, self._model.created_by_id)

    @strawberry.field(description="By name.")
    async def labels(self, info: strawberry.Info) -> list[Label]:
        ctx: Context = info.context
        return [
            Label.from_model(label) for label in await ctx.loaders.task_labels.load(self._model.id)
        ]

    @strawberry.field(description="Oldest first.")
    async def comments(
        self, info: strawberry.Info, first: int | None = None, after: str | None = None
    ) -> Connection[Comment]:
        ctx: Context = info.context
        if self.deleted_at is not None:
            # Comments follow their task (policy.sees_task): the payload of deleteTask shows a
            # MEMBER the task it deleted, but no longer its comments.
            role = await ctx.loaders.roles.load(self._model.workspace_id)
            if not policy.sees_task(role, deleted=True):
                return Connection.empty()
        return await _children(
            info,
            "Task.comments",
            self._model.id,
            PageArgs(first=first, after=after),
            CommentRepository,
            models.Comment.task_id,
            COMMENT_ORDER,
            Comment.from_model,
        )

    @strawberry.field(description="What happened to this task, newest first.")
    async def history(
        self, info: strawberry.Info, first: int | None = None, after: str | None = None
    ) -> Connection[AuditEvent]:
        return await _children(
            info,
            "Task.history",
            self._model.id,
            PageArgs(first=first, after=after),
            AuditEventRepository,
            models.AuditEvent.entity_id,
            AUDIT_ORDER,
            AuditEvent.from_model,
        )


@strawberry.type
class Project(Node):
    id: strawberry.ID
    key: str
    name: str
    description: str | None
    archived_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int
    _model: strawberry.Private[models.Project]

    @classmethod
    def from_model(cls, p: models.Project) -> Project:
        return cls(
            id=to_global_id("Project", p.id),
            key=p.key,
            name=p.name,
            description=p.description,
            archived_at=p.archived_at,
            created_at=p.created_at,
            updated_at=p.updated_at,
            version=p.version,
            _model=p,
        )

    @strawberry.field
    async def workspace(self, info: strawberry.Info) -> Workspace:
        ctx: Context = info.context
        ws = await ctx.loaders.workspaces.load(self._model.workspace_id)
        assert ws is not None, "the workspace of a visible project is visible"
        return Workspace.from_model(ws)

    @strawberry.field(
        description="Tasks, filtered and ordered (default: oldest first). Deleted tasks only "
        "with filter.includeDeleted, for ADMIN and above."
    )
    async def tasks(
        self,
        info: strawberry.Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: TaskFilterInput | None = None,
        order_by: TaskOrder | None = None,
    ) -> Connection[Task]:
        ctx: Context = info.context
        f = task_filter(filter)
        if f.include_deleted:
            role = await ctx.loaders.roles.load(self._model.workspace_id)
            policy.require(role, policy.Action.READ_DELETED)
        order = order_by or TaskOrder()
        return await ctx.loaders.connection(
            "Project.tasks",
            self._model.id,
            PageArgs(first=first, after=after, last=last, before=before),
            repository=TaskRepository,
            statement=lambda r: r.filtered(f),
            parent=models.Task.project_id,
            order=TASK_ORDERS[(order.field.value, order.direction.value == "DESC")],
            wrap=Task.from_model,
            filter_key=f,
            with_page=page_requested(info),
            count=lambda r, ids: r.count_in_projects(f, ids),
        )


@strawberry.type
class Workspace(Node):
    id: strawberry.ID
    name: str
    slug: str
    created_at: datetime
    _id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_model(cls, ws: models.Workspace) -> Workspace:
        return cls(
            id=to_global_id("Workspace", ws.id),
            name=ws.name,
            slug=ws.slug,
            created_at=ws.created_at,
            _id=ws.id,
        )

    async def _role(self, info: strawberry.Info) -> Role:
        ctx: Context = info.context
        role = await ctx.loaders.roles.load(self._id)
        assert role is not None, "a visible workspace is one the viewer belongs to"
        return role

    @strawberry.field(description="The signed-in user's role here.")
    async def viewer_role(self, info: strawberry.Info) -> Role:
        return await self._role(info)

    @strawberry.field(description="The members, oldest first.")
    async def members(
        self, info: strawberry.Info, first: int | None = None, after: str | None = None
    ) -> Connection[Membership]:
        return await _children(
            info,
            "Workspace.members",
            self._id,
            PageArgs(first=first, after=after),
            MembershipRepository,
            models.Membership.workspace_id,
            MEMBERSHIP_ORDER,
            Membership.from_model,
        )

    @strawberry.field(description="Projects, oldest first; archived ones only when asked for.")
    async def projects(
        self,
        info: strawberry.Info,
        first: int | None = None,
        after: str | None = None,
        include_archived: bool = False,
    ) -> Connection[Project]:
        ctx: Context = info.context

        def statement(r: Any) -> Any:
            stmt = r.select()
            return stmt if include_archived else stmt.where(models.Project.archived_at.is_(None))

        return await ctx.loaders.connection(
            "Workspace.projects",
            self._id,
            PageArgs(first=first, after=after),
            repository=ProjectRepository,
            statement=statement,
            parent=models.Project.workspace_id,
            order=PROJECT_ORDER,
            wrap=Project.from_model,
            filter_key=include_archived,
            with_page=page_requested(info),
        )

    @strawberry.field(description="One project by its key, archived or not.")
    async def project(self, info: strawberry.Info, key: str) -> Project | None:
        ctx: Context = info.context
        found = await ProjectRepository(ctx.db, ctx.scope).get_by_key(self._id, key.upper())
        return Project.from_model(found) if found else None

    @strawberry.field(description="Labels, oldest first.")
    async def labels(
        self, info: strawberry.Info, first: int | None = None, after: str | None = None
    ) -> Connection[Label]:
        return await _children(
            info,
            "Workspace.labels",
            self._id,
            PageArgs(first=first, after=after),
            LabelRepository,
            models.Label.workspace_id,
            LABEL_ORDER,
            Label.from_model,
        )

    @strawberry.field(
        description="Everything that changed here, newest first. OWNER and ADMIN only."
    )
    async def audit_events(
        self, info: strawberry.Info, first: int | None = None, after: str | None = None
    ) -> Connection[AuditEvent]:
        policy.require(await self._role(info), policy.Action.READ_AUDIT)
        return await _children(
            info,
            "Workspace.auditEvents",
            self._id,
            PageArgs(first=first, after=after),
            AuditEventRepository,
            models.AuditEvent.workspace_id,
            AUDIT_ORDER,
            AuditEvent.from_model,
        )


T = TypeVar("T")


async def _children(
    info: strawberry.Info,
    name: str,
    parent_id: uuid.UUID,
    args: PageArgs,
    repository: Any,
    parent: Any,
    order: KeysetOrder,
    wrap: Callable[[Any], T],
) -> Connection[T]:
    """A plain nested connection: every child of the parent, in the given order."""
    ctx: Context = info.context
    return await ctx.loaders.connection(
        name,
        parent_id,
        args,
        repository=repository,
        statement=lambda r: r.select(),
        parent=parent,
        order=order,
        wrap=wrap,
        with_page=page_requested(info),
    )
