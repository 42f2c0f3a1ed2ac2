"""createTask, updateTask, deleteTask, restoreTask (MEMBER and above)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import strawberry

from db.errors import Conflict, DomainError, InvalidInput, NotFound
from db.ids import uuid7
from db.models import Task as TaskModel
from db.models import TaskPriority, TaskStatus
from db.repositories import LabelRepository, MembershipRepository, TaskRepository
from db.repositories.tasks import CreateRefused
from graphql_api import audit, policy, validation
from graphql_api.context import Context
from graphql_api.events import publish as events
from graphql_api.resolvers.common import (
    apply,
    authorize,
    check_version,
    created,
    description,
    find,
    given,
    required,
    save_version,
    sees_task,
)
from graphql_api.resolvers.mutation import mutation
from graphql_api.schema.core_inputs import (
    CreateTaskInput,
    DeleteTaskInput,
    RestoreTaskInput,
    UpdateTaskInput,
)
from graphql_api.schema.payloads import (
    CreateTaskPayload,
    DeleteTaskPayload,
    RestoreTaskPayload,
    UpdateTaskPayload,
)
from graphql_api.schema.relay import parse_id, parse_ids, to_global_id
from graphql_api.schema.types import Task

MAX_LABELS = 20


async def _changed(ctx: Context, kind: str, task: TaskModel, changes: dict[str, Any]) -> None:
    """Every task change is audited and announced, both in the writing transaction."""
    await audit.record(
        ctx,
        f"task.{kind.lower()[:-1]}",
        "Task",
        task.id,
        workspace_id=task.workspace_id,
        changes=changes,
        notify=events.notification(ctx, kind, task),
    )


def _title(value: str) -> str:
    return validation.text(value, ["input", "title"], max_length=200, what="the title")


_ASSIGNEE = ["input", "assigneeId"]
_LABELS = ["input", "labelIds"]


def _assignee_id(global_id: str | None) -> uuid.UUID | None:
    return None if global_id is None else parse_id(global_id, "User", _ASSIGNEE)


def _not_a_member() -> InvalidInput:
    return InvalidInput("the assignee must be a member of this workspace", field=_ASSIGNEE)


async def _assignee(
    ctx: Context, workspace_id: uuid.UUID, global_id: str | None
) -> uuid.UUID | None:
    user_id = _assignee_id(global_id)
    if (
        user_id is not None
        and await MembershipRepository(ctx.db).get_for(workspace_id, user_id) is None
    ):
        raise _not_a_member()
    return user_id


def _label_ids(global_ids: Sequence[str] | None) -> list[uuid.UUID]:
    ids = list(dict.fromkeys(parse_ids(global_ids or [], "Label", _LABELS)))
    if len(ids) > MAX_LABELS:
        raise InvalidInput(f"a task carries at most {MAX_LABELS} labels", field=_LABELS)
    return ids


def _no_such_label() -> NotFound:
    return NotFound("no such label in this workspace", field=_LABELS)


async def _labels(
    ctx: Context, workspace_id: uuid.UUID, global_ids: Sequence[str] | None
) -> list[uuid.UUID]:
    ids = _label_ids(global_ids)
    if ids and await LabelRepository(ctx.db).missing_from(workspace_id, ids):
        raise _no_such_label()
    return ids


T = TypeVar("T")


@dataclass(frozen=True)
class _Parsed(Generic[T]):
    """An input parsed up front (its value goes into the first statement) whose error, if any,
    is reported in its turn, after the checks that come before it."""

    value: T | None
    error: DomainError | None

    @classmethod
    def of(cls, parse: Callable[[], T]) -> _Parsed[T]:
        try:
            return cls(parse(), None)
        except DomainError as exc:
            return cls(None, exc)

    def get(self) -> T:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


def _label_gids(ids: list[uuid.UUID]) -> list[str]:
    return [to_global_id("Label", i) for i in sorted(ids)]


async def _live_task(ctx: Context, global_id: str) -> TaskModel:
    task: TaskModel = await find(ctx, ctx.loaders.tasks, global_id, "Task", ["input", "id"])
    if task.deleted_at is not None:
        raise NotFound("this task is deleted; restore it first", field=["input", "id"])
    return task


@mutation(CreateTaskPayload, one_statement=True)
async def create_task(info: strawberry.Info, input: CreateTaskInput) -> CreateTaskPayload:
    """One statement: the task with its number, labels, audit row and NOTIFY, written only
    where every check holds (the project, the viewer's role there, the assignee, the labels).
    When it writes nothing, or the input itself is wrong, a second statement reads the checks
    to say why: they fail in the order the fields are read, as each would with a statement of
    its own."""
    ctx: Context = info.context
    project_id = parse_id(input.project_id, "Project", ["input", "projectId"])
    assignee = _Parsed.of(lambda: _assignee_id(input.assignee_id))
    labels = _Parsed.of(lambda: _label_ids(input.label_ids))
    repo = TaskRepository(ctx.db, ctx.scope)

    def fields() -> tuple[dict[str, Any], list[uuid.UUID]]:
        """The task's columns and labels from the input, or the input's first error."""
        values: dict[str, Any] = {
            "title": _title(input.title),
            "description": description(input.description, ["input", "description"]),
            "status": input.status or TaskStatus.TODO,
            "priority": input.priority or TaskPriority.NONE,
            "assignee_id": assignee.get(),
            "due_at": input.due_at,
        }
        return values, labels.get()

    async def refusal() -> None:
        """Raises the first reason the create is refused, in the fields' order."""
        checks = await repo.creation_checks(project_id, assignee.value, labels.value or [])
        project = checks.project
        if project is None:
            raise NotFound("no Project with this id", field=["input", "projectId"])
        policy.require(checks.role, policy.Action.WRITE_TASKS)
        if project.archived_at is not None:
            raise Conflict(
                "the project is archived; unarchive it first", field=["input", "projectId"]
            )
        values, label_ids = fields()
        if values["assignee_id"] is not None and not checks.assignee_is_member:
            raise _not_a_member()
        if not checks.live_label_ids.issuperset(label_ids):
            raise _no_such_label()

    try:
        values, label_ids = fields()
    except DomainError:
        await refusal()  # a check on the project comes first
        raise
    task_id = uuid7()
    changes = created(values)  # and the number, which the statement draws
    if label_ids:
        changes["labelIds"] = [None, _label_gids(label_ids)]
    # What the NOTIFY says of the task, before it exists: its ids (the workspace is the
    # project's, which the statement sets).
    announced = TaskModel(id=task_id, project_id=project_id)
    try:
        task, key = await repo.create(
            project_id,
            {**values, "id": task_id, "created_by_id": ctx.viewer_id},
            label_ids,
            audit=audit.row(
                ctx, "task.create", "Task", task_id, workspace_id=None, changes=changes
            ),
            notify=events.notification(ctx, "CREATED", announced),
            writers=policy.roles_allowed(policy.Action.WRITE_TASKS),
        )
    except CreateRefused:
        await refusal()
        raise  # every check holds again by now
    made = Task.from_model(task)
    made._project_key = key  # keys never change: the identifier is at hand
    return CreateTaskPayload(task=made)


@mutation(UpdateTaskPayload)
async def update_task(info: strawberry.Info, input: UpdateTaskInput) -> UpdateTaskPayload:
    ctx: Context = info.context
    task = await _live_task(ctx, input.id)
    await authorize(ctx, task.workspace_id, policy.Action.WRITE_TASKS)
    check_version(task, input.expected_version, ["input", "expectedVersion"])
    updates: dict[str, Any] = {}
    if given(input.title):
        updates["title"] = _title(required(input.title, ["input", "title"]))
    if given(input.description):
        updates["description"] = description(input.description, ["input", "description"])
    if given(input.status):
        updates["status"] = required(input.status, ["input", "status"])
    if given(input.priority):
        updates["priority"] = required(input.priority, ["input", "priority"])
    if given(input.assignee_id):
        updates["assignee_id"] = await _assignee(ctx, task.workspace_id, input.assignee_id)
    if given(input.due_at):
        updates["due_at"] = input.due_at
    repo = TaskRepository(ctx.db)
    changes = apply(task, updates)
    if given(input.label_ids):
        new_labels = await _labels(ctx, task.workspace_id, input.label_ids)
        old_labels = await repo.label_ids(task.id)
        if set(new_labels) != set(old_labels):
            await repo.set_labels(task, new_labels)
            changes["labelIds"] = [_label_gids(old_labels), _label_gids(new_labels)]
    if changes:
        task.updated_at = datetime.now(UTC)  # also when only labels changed: bumps version
        await save_version(repo, task, input.expected_version)
        await _changed(ctx, "UPDATED", task, changes)
    return UpdateTaskPayload(task=Task.from_model(task))


@mutation(DeleteTaskPayload)
async def delete_task(info: strawberry.Info, input: DeleteTaskInput) -> DeleteTaskPayload:
    ctx: Context = info.context
    task = await _live_task(ctx, input.id)
    await authorize(ctx, task.workspace_id, policy.Action.WRITE_TASKS)
    await TaskRepository(ctx.db).delete(task)
    deleted_at = task.deleted_at.isoformat() if task.deleted_at else None
    await _changed(ctx, "DELETED", task, {"deletedAt": [None, deleted_at]})
    return DeleteTaskPayload(task=Task.from_model(task))


@mutation(RestoreTaskPayload)
async def restore_task(info: strawberry.Info, input: RestoreTaskInput) -> RestoreTaskPayload:
    ctx: Context = info.context
    task: TaskModel = await find(ctx, ctx.loaders.tasks, input.id, "Task", ["input", "id"])
    if not await sees_task(ctx, task):  # a deleted task, for a role that cannot see one
        raise NotFound("no Task with this id", field=["input", "id"])
    await authorize(ctx, task.workspace_id, policy.Action.RESTORE_TASKS)
    if task.deleted_at is not None:
        deleted_at = task.deleted_at.isoformat()
        await TaskRepository(ctx.db).restore(task)
        await _changed(ctx, "RESTORED", task, {"deletedAt": [deleted_at, None]})
    return RestoreTaskPayload(task=Task.from_model(task))
