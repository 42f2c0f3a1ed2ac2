"""Object types of the API, each field declared once with its description
(graphql_api/schema/describe.py): the resolvers, the compiled fast path and the cost estimate
are all derived from it. Relationship fields load through DataLoaders, and nested connections
are batched across parents (no N+1)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from db import models
from db.encodings import task_identifier, task_identifier_sql
from db.json_sql import column_sql, scalar_subquery
from db.repositories import (
    AuditEventRepository,
    CommentRepository,
    LabelRepository,
    MembershipRepository,
    ProjectRepository,
    TaskRepository,
    UserRepository,
    WorkspaceRepository,
)
from db.repositories.audit_events import AUDIT_ORDER
from db.repositories.comments import COMMENT_ORDER
from db.repositories.labels import LABEL_ORDER
from db.repositories.projects import PROJECT_ORDER
from db.repositories.tasks import TASK_ORDERS
from db.repositories.workspaces import MEMBERSHIP_ORDER
from graphql_api import policy
from graphql_api.context import Context
from graphql_api.resolvers.fields import described
from graphql_api.schema.describe import (
    Args,
    Children,
    Described,
    Lookup,
    Reference,
    Related,
    Sql,
    column,
    computed,
    global_id,
)
from graphql_api.schema.filters import TaskFilterInput, TaskOrder, task_filter
from graphql_api.schema.relay import Connection, Node

# Registered with strawberry once; the models' enums are the GraphQL enums.
strawberry.enum(models.Role, description="A member's role in a workspace.")
strawberry.enum(models.TaskStatus)
strawberry.enum(models.TaskPriority, description="Sorts NONE < LOW < MEDIUM < HIGH < URGENT.")
Role = models.Role
TaskStatus = models.TaskStatus
TaskPriority = models.TaskPriority


def _user(column_name: str) -> Reference:
    """A referenced user, null when there is none or they are no longer visible to you."""
    return Reference("User", column_name, UserRepository)


@strawberry.type
class User(Node, Described):
    id: strawberry.ID = global_id()
    email: str = column(
        description="Visible to the user themself and to the members of a shared workspace."
    )
    display_name: str = column()
    created_at: datetime = column()
    _model: strawberry.Private[models.User]


@strawberry.type
class Membership(Described):
    role: Role = column()
    created_at: datetime = column()
    _model: strawberry.Private[models.Membership]

    @described(_user("user_id"))
    async def user(self, info: strawberry.Info) -> User: ...


@strawberry.type
class Label(Node, Described):
    id: strawberry.ID = global_id()
    name: str = column()
    color: str = column(description="#RRGGBB")
    created_at: datetime = column()
    _model: strawberry.Private[models.Label]


@strawberry.type
class AuditEvent(Node, Described):
    id: strawberry.ID = global_id()
    action: str = column(description="e.g. task.update, member.add")
    entity_type: str = column()
    entity_id: strawberry.ID = global_id("entity_id", type_attr="entity_type")
    at: datetime = column("created_at")
    changes: JSON | None = column(description="Changed fields as {field: [before, after]}.")
    _model: strawberry.Private[models.AuditEvent]

    @described(_user("actor_id"))
    async def actor(self, info: strawberry.Info) -> User | None: ...


@strawberry.type
class Comment(Node, Described):
    id: strawberry.ID = global_id()
    body: str = column()
    created_at: datetime = column()
    updated_at: datetime = column()
    version: int = column()
    _model: strawberry.Private[models.Comment]

    @described(_user("author_id"))
    async def author(self, info: strawberry.Info) -> User | None: ...


def _identifier_sql(sql: Sql, alias: str) -> str:
    project = sql.parent_row(alias, "project_id")
    key = (
        column_sql(project, "key")
        if project is not None
        else scalar_subquery(sql.embed(ProjectRepository.key_of(sql.ref(alias, "project_id"))))
    )
    return task_identifier_sql(key, column_sql(alias, "number"))


# Comments follow their task (policy.sees_task): a deleted task's only for the roles that may
# see deleted tasks; e.g. the payload of deleteTask shows a MEMBER the task, not its comments.
def _comments_of_visible_tasks(repo: Any, _: Args) -> Any:
    return repo.select().where(
        repo.of_visible_task(policy.roles_allowed(policy.Action.READ_DELETED))
    )


@strawberry.type
class Task(Node, Described):
    id: strawberry.ID = global_id()
    number: int = column()
    title: str = column()
    description: str | None = column()
    status: TaskStatus = column()
    priority: TaskPriority = column()
    due_at: datetime | None = column()
    created_at: datetime = column()
    updated_at: datetime = column()
    deleted_at: datetime | None = column()
    version: int = column(description="Pass as expectedVersion to updateTask.")
    _model: strawberry.Private[models.Task]
    # The project's key, when whoever made this object knew it (createTask): no statement then.
    _project_key: strawberry.Private[str | None] = None

    @computed(
        _identifier_sql,
        description='"<project key>-<number>", e.g. "WEB-42".',
        at_hand=lambda task: task._project_key is not None,
    )
    async def identifier(self, info: strawberry.Info) -> str:
        if self._project_key is not None:
            return task_identifier(self._project_key, self.number)
        ctx: Context = info.context
        project = await ctx.loaders.projects.load(self._model.project_id)
        assert project is not None, "the project of a visible task is visible"
        return task_identifier(project.key, self.number)

    @described(Reference("Project", "project_id", ProjectRepository))
    async def project(self, info: strawberry.Info) -> Project: ...

    @described(_user("assignee_id"))
    async def assignee(self, info: strawberry.Info) -> User | None: ...

    @described(_user("created_by_id"))
    async def created_by(self, info: strawberry.Info) -> User | None: ...

    @described(
        Related("Label", TaskRepository.labels_select, models.TaskLabel.task_id, "task_labels"),
        description="By name.",
    )
    async def labels(self, info: strawberry.Info) -> list[Label]: ...

    @described(
        Children(
            "Comment",
            CommentRepository,
            models.Comment.task_id,
            order=lambda _: COMMENT_ORDER,
            statement=_comments_of_visible_tasks,
        ),
        description="Oldest first.",
    )
    async def comments(
        self, info: strawberry.Info, first: int | None = None, after: str | None = None
    ) -> Connection[Comment]: ...

    @described(
        Children(
            "AuditEvent",
            AuditEventRepository,
            models.AuditEvent.entity_id,
            order=lambda _: AUDIT_ORDER,
        ),
        description="What happened to this task, newest first.",
    )
    async def history(
        self, info: strawberry.Info, first: int | None = None, after: str | None = None
    ) -> Connection[AuditEvent]: ...


def _task_order(args: Args) -> Any:
    order = args.get("order_by") or TaskOrder()
    return TASK_ORDERS[(order.field.value, order.direction.value == "DESC")]


def _deleted_needs_role(args: Args) -> policy.Action | None:
    return policy.Action.READ_DELETED if task_filter(args.get("filter")).include_deleted else None


PROJECT_TASKS = Children(
    "Task",
    TaskRepository,
    models.Task.project_id,
    order=_task_order,
    statement=lambda repo, args: repo.filtered(task_filter(args.get("filter"))),
    variant=lambda args: task_filter(args.get("filter")),
    guard=_deleted_needs_role,
    # totalCount from the task counters when the filter allows (one project; many).
    total=(
        lambda repo, args, project: repo.total_in_project(task_filter(args.get("filter")), project),
        lambda repo, args, ids: repo.count_in_projects(task_filter(args.get("filter")), ids),
    ),
)


@strawberry.type
class Project(Node, Described):
    id: strawberry.ID = global_id()
    key: str = column()
    name: str = column()
    description: str | None = column()
    archived_at: datetime | None = column()
    created_at: datetime = column()
    updated_at: datetime = column()
    version: int = column()
    _model: strawberry.Private[models.Project]

    @described(Reference("Workspace", "workspace_id", WorkspaceRepository))
    async def workspace(self, info: strawberry.Info) -> Workspace: ...

    @described(
        PROJECT_TASKS,
        description="Tasks, filtered and ordered (default: oldest first). Deleted tasks only "
        "with filter.includeDeleted, for ADMIN and above.",
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
    ) -> Connection[Task]: ...


def _viewer_role_sql(sql: Sql, alias: str) -> str:
    return scalar_subquery(
        sql.embed(MembershipRepository.role_of(sql.viewer_id, sql.ref(alias, "id")))
    )


@strawberry.type
class Workspace(Node, Described):
    id: strawberry.ID = global_id()
    name: str = column()
    slug: str = column()
    created_at: datetime = column()
    _model: strawberry.Private[models.Workspace]

    @computed(_viewer_role_sql, description="The signed-in user's role here.")
    async def viewer_role(self, info: strawberry.Info) -> Role:
        ctx: Context = info.context
        role = await ctx.loaders.roles.load(self._model.id)
        assert role is not None, "a visible workspace is one the viewer belongs to"
        return role

    @described(
        Children(
            "Membership",
            MembershipRepository,
            models.Membership.workspace_id,
            order=lambda _: MEMBERSHIP_ORDER,
        ),
        description="The members, oldest first.",
    )
    async def members(
        self, info: strawberry.Info, first: int | None = None, after: str | None = None
    ) -> Connection[Membership]: ...

    @described(
        Children(
            "Project",
            ProjectRepository,
            models.Project.workspace_id,
            order=lambda _: PROJECT_ORDER,
            statement=lambda repo, args: repo.listed(bool(args.get("include_archived"))),
            variant=lambda args: bool(args.get("include_archived")),
        ),
        description="Projects, oldest first; archived ones only when asked for.",
    )
    async def projects(
        self,
        info: strawberry.Info,
        first: int | None = None,
        after: str | None = None,
        include_archived: bool = False,
    ) -> Connection[Project]: ...

    @described(
        Lookup("Project", ProjectRepository, lambda repo, ws, args: repo.by_key(ws, args["key"])),
        description="One project by its key, archived or not.",
    )
    async def project(self, info: strawberry.Info, key: str) -> Project | None: ...

    @described(
        Children("Label", LabelRepository, models.Label.workspace_id, order=lambda _: LABEL_ORDER),
        description="Labels, oldest first.",
    )
    async def labels(
        self, info: strawberry.Info, first: int | None = None, after: str | None = None
    ) -> Connection[Label]: ...

    @described(
        Children(
            "AuditEvent",
            AuditEventRepository,
            models.AuditEvent.workspace_id,
            order=lambda _: AUDIT_ORDER,
            guard=lambda _: policy.Action.READ_AUDIT,
            workspace_attr="id",
        ),
        description="Everything that changed here, newest first. OWNER and ADMIN only.",
    )
    async def audit_events(
        self, info: strawberry.Info, first: int | None = None, after: str | None = None
    ) -> Connection[AuditEvent]: ...
