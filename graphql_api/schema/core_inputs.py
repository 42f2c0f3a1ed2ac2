"""Inputs of the project, label, task and comment mutations.

In update inputs an absent field leaves the value as it is; an explicit null clears a nullable one.
"""

from __future__ import annotations

from datetime import datetime

import strawberry

from db.models import TaskPriority, TaskStatus

UNSET = strawberry.UNSET


@strawberry.input
class CreateProjectInput:
    workspace_id: strawberry.ID
    key: str = strawberry.field(description="2-10 upper-case letters and digits, from a letter.")
    name: str
    description: str | None = None


@strawberry.input
class UpdateProjectInput:
    id: strawberry.ID
    name: str | None = UNSET
    description: str | None = UNSET
    expected_version: int | None = UNSET


@strawberry.input
class ArchiveProjectInput:
    id: strawberry.ID


@strawberry.input
class UnarchiveProjectInput:
    id: strawberry.ID


@strawberry.input
class CreateLabelInput:
    workspace_id: strawberry.ID
    name: str
    color: str = strawberry.field(description="#RRGGBB")


@strawberry.input
class UpdateLabelInput:
    id: strawberry.ID
    name: str | None = UNSET
    color: str | None = UNSET


@strawberry.input
class DeleteLabelInput:
    id: strawberry.ID


@strawberry.input
class CreateTaskInput:
    project_id: strawberry.ID
    title: str
    description: str | None = None
    status: TaskStatus | None = None
    priority: TaskPriority | None = None
    assignee_id: strawberry.ID | None = None
    label_ids: list[strawberry.ID] | None = None
    due_at: datetime | None = None


@strawberry.input
class UpdateTaskInput:
    id: strawberry.ID
    expected_version: int | None = strawberry.field(
        default=UNSET, description="The version you saw; if the task changed since: CONFLICT."
    )
    title: str | None = UNSET
    description: str | None = UNSET
    status: TaskStatus | None = UNSET
    priority: TaskPriority | None = UNSET
    assignee_id: strawberry.ID | None = UNSET
    label_ids: list[strawberry.ID] | None = UNSET
    due_at: datetime | None = UNSET


@strawberry.input
class DeleteTaskInput:
    id: strawberry.ID


@strawberry.input
class RestoreTaskInput:
    id: strawberry.ID


@strawberry.input
class CreateCommentInput:
    task_id: strawberry.ID
    body: str


@strawberry.input
class UpdateCommentInput:
    id: strawberry.ID
    body: str
    expected_version: int | None = UNSET


@strawberry.input
class DeleteCommentInput:
    id: strawberry.ID
