"""The GraphQL schema."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ValidationCache
from strawberry.schema.config import StrawberryConfig

from graphql_api.context import Context
from graphql_api.documents.parsed import PinnedParserCache
from graphql_api.fast.extension import FastPath
from graphql_api.fast.payloads import CompiledPayloads
from graphql_api.idempotency import Idempotency
from graphql_api.limits.extension import Limits
from graphql_api.observability.extension import observe
from graphql_api.resolvers import accounts as account_resolvers
from graphql_api.resolvers import comments as comment_resolvers
from graphql_api.resolvers import labels as label_resolvers
from graphql_api.resolvers import nodes as node_resolvers
from graphql_api.resolvers import projects as project_resolvers
from graphql_api.resolvers import tasks as task_resolvers
from graphql_api.resolvers import workspaces as workspace_resolvers
from graphql_api.resolvers.subscriptions import task_events
from graphql_api.resolvers.viewer import resolve_viewer
from graphql_api.schema.describe import root
from graphql_api.schema.errors import raised_before_execution, shape_stream
from graphql_api.schema.payloads import (
    AddMemberPayload,
    ArchiveProjectPayload,
    AuthPayload,
    ChangeMemberRolePayload,
    CreateCommentPayload,
    CreateLabelPayload,
    CreateProjectPayload,
    CreateTaskPayload,
    CreateWorkspacePayload,
    DeleteCommentPayload,
    DeleteLabelPayload,
    DeleteTaskPayload,
    LogoutPayload,
    RemoveMemberPayload,
    RestoreTaskPayload,
    UnarchiveProjectPayload,
    UpdateCommentPayload,
    UpdateLabelPayload,
    UpdateProjectPayload,
    UpdateTaskPayload,
)
from graphql_api.schema.permissions import AUTHENTICATED
from graphql_api.schema.relay import Connection, Node
from graphql_api.schema.scalars import SCALAR_OVERRIDES
from graphql_api.schema.storable import StorableStrings
from graphql_api.schema.subscriptions import TaskEvent
from graphql_api.schema.types import AuditEvent, Comment, Label, Project, Task, User, Workspace
from graphql_api.settings import Settings
from graphql_api.unit_of_work import UnitOfWork


@strawberry.type
class Query:
    viewer: User | None = strawberry.field(
        resolver=resolve_viewer,
        description="The signed-in user; null when anonymous.",
        metadata=root("viewer"),
    )
    node: Node | None = strawberry.field(
        resolver=node_resolvers.node,
        permission_classes=AUTHENTICATED,
        metadata=root("node"),
        description="Any object by its id; null when it does not exist or is not visible to you.",
    )
    nodes: list[Node | None] = strawberry.field(
        resolver=node_resolvers.nodes,
        permission_classes=AUTHENTICATED,
        metadata=root("nodes", returns="ids"),
        description="Objects by id (at most 100), in the order asked; null where not visible.",
    )
    workspaces: Connection[Workspace] = strawberry.field(
        resolver=workspace_resolvers.workspaces,
        permission_classes=AUTHENTICATED,
        metadata=root("workspaces", returns="page"),
        description="The workspaces you belong to, oldest first.",
    )
    workspace: Workspace | None = strawberry.field(
        resolver=workspace_resolvers.workspace,
        permission_classes=AUTHENTICATED,
        metadata=root("workspace"),
        description="One of your workspaces by its slug.",
    )


@strawberry.type
class Subscription:
    task_events: TaskEvent = strawberry.subscription(  # type: ignore[assignment]
        resolver=task_events,
        permission_classes=AUTHENTICATED,
        description="Task changes in a workspace (optionally one project), as they commit.",
    )


def _m(resolver: Any, description: str | None = None) -> Any:
    """A mutation for signed-in users."""
    return strawberry.mutation(
        resolver=resolver, permission_classes=AUTHENTICATED, description=description
    )


@strawberry.type
class Mutation:
    register: AuthPayload = strawberry.mutation(
        resolver=account_resolvers.register, description="Create an account and sign in."
    )
    login: AuthPayload = strawberry.mutation(
        resolver=account_resolvers.login, description="Sign in."
    )
    refresh_session: AuthPayload = strawberry.mutation(
        resolver=account_resolvers.refresh_session,
        description="Trade a refresh token for a new access token and a new refresh token.",
    )
    logout: LogoutPayload = strawberry.mutation(
        resolver=account_resolvers.logout,
        description="Revoke a refresh token and its whole family.",
    )
    create_workspace: CreateWorkspacePayload = strawberry.mutation(
        resolver=workspace_resolvers.create_workspace, permission_classes=AUTHENTICATED
    )
    add_member: AddMemberPayload = strawberry.mutation(
        resolver=workspace_resolvers.add_member,
        permission_classes=AUTHENTICATED,
        description="Add a registered user by email.",
    )
    change_member_role: ChangeMemberRolePayload = strawberry.mutation(
        resolver=workspace_resolvers.change_member_role, permission_classes=AUTHENTICATED
    )
    remove_member: RemoveMemberPayload = strawberry.mutation(
        resolver=workspace_resolvers.remove_member,
        permission_classes=AUTHENTICATED,
        description="Remove a member, or leave (your own user id).",
    )
    create_project: CreateProjectPayload = _m(project_resolvers.create_project)
    update_project: UpdateProjectPayload = _m(project_resolvers.update_project)
    archive_project: ArchiveProjectPayload = _m(project_resolvers.archive_project)
    unarchive_project: UnarchiveProjectPayload = _m(project_resolvers.unarchive_project)
    create_label: CreateLabelPayload = _m(label_resolvers.create_label)
    update_label: UpdateLabelPayload = _m(label_resolvers.update_label)
    delete_label: DeleteLabelPayload = _m(label_resolvers.delete_label)
    create_task: CreateTaskPayload = _m(task_resolvers.create_task)
    update_task: UpdateTaskPayload = _m(
        task_resolvers.update_task,
        "Change a task. Absent fields stay; an explicit null clears assigneeId, dueAt, "
        "description. With expectedVersion, a task changed since is a CONFLICT.",
    )
    delete_task: DeleteTaskPayload = _m(
        task_resolvers.delete_task, "Soft delete; restoreTask undoes it."
    )
    restore_task: RestoreTaskPayload = _m(task_resolvers.restore_task)
    create_comment: CreateCommentPayload = _m(comment_resolvers.create_comment)
    update_comment: UpdateCommentPayload = _m(comment_resolvers.update_comment, "Author only.")
    delete_comment: DeleteCommentPayload = _m(
        comment_resolvers.delete_comment, "The author, or ADMIN and above."
    )


class Schema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Client errors are not server errors: the ErrorShaping extension logs the unexpected
        ones, with their request id."""

    async def stream(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> AsyncGenerator[Any, None]:
        """What WebSocket operations run through (`subscribe` calls it too): their errors are
        shaped as the HTTP view shapes its results'."""
        try:
            results = await super().stream(query, variable_values, context_value, *args, **kwargs)
        except Exception as exc:  # an extension refused it, or the database is unreachable
            if not isinstance(context_value, Context):
                raise
            results = raised_before_execution(exc)
        if not isinstance(context_value, Context):
            return results
        production = context_value.settings.is_production
        return shape_stream(results, context_value.request_id, production)


def build_schema(settings: Settings | None = None, tracer: Any = None) -> strawberry.Schema:
    """The schema, configured for a server's settings (the SDL is the same for all); with an
    OpenTelemetry tracer, each operation is a span."""
    settings = settings or Settings()
    return Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[User, Workspace, Project, Task, Label, Comment, AuditEvent],
        scalar_overrides=SCALAR_OVERRIDES,  # type: ignore[arg-type]
        execution_context_class=CompiledPayloads,  # and a per-event memo (subscriptions)
        config=StrawberryConfig(
            batching_config={"max_operations": settings.max_batch} if settings.batching else None,
        ),
        extensions=[
            observe(tracer),  # first: its span encloses the others' work
            StorableStrings,  # strings PostgreSQL cannot hold are a BAD_REQUEST, up front
            Limits,  # it adds the validation rules the caches below key on
            # Factories: the caches themselves are module-level and shared by every request.
            # Documents sent by id come already parsed (graphql_api/documents/parsed.py).
            lambda: PinnedParserCache(maxsize=1024),
            lambda: ValidationCache(maxsize=1024),
            UnitOfWork,
            Idempotency,  # inside the unit of work: its key row commits with the writes
            FastPath,
        ],
    )


schema = build_schema()
