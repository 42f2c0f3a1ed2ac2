"""Task filtering and ordering inputs, and their translation to the repository's filter."""

from __future__ import annotations

import enum
from datetime import datetime

import strawberry

from db.errors import InvalidInput
from db.models import TaskStatus
from db.repositories.tasks import TaskFilter
from graphql_api.schema.relay import parse_ids, require_valid_id

MAX_FILTER_IDS = 50


@strawberry.enum
class TaskOrderField(enum.Enum):
    CREATED_AT = "CREATED_AT"
    UPDATED_AT = "UPDATED_AT"
    DUE_AT = "DUE_AT"
    PRIORITY = "PRIORITY"
    NUMBER = "NUMBER"


@strawberry.enum
class OrderDirection(enum.Enum):
    ASC = "ASC"
    DESC = "DESC"


@strawberry.input(description="Nulls sort last in both directions; the id breaks ties.")
class TaskOrder:
    field: TaskOrderField = TaskOrderField.CREATED_AT
    direction: OrderDirection = OrderDirection.ASC


@strawberry.input(name="TaskFilter")
class TaskFilterInput:
    status: list[TaskStatus] | None = strawberry.field(default=None, description="Any of these.")
    assignee_id: strawberry.ID | None = None
    unassigned: bool | None = None
    label_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Tasks that carry all of these labels."
    )
    due_before: datetime | None = None
    search: str | None = strawberry.field(
        default=None,
        description="Full-text search of title and description, web-search syntax: "
        '"exact phrase", -exclude, a OR b.',
    )
    include_deleted: bool | None = strawberry.field(
        default=None, description="Include deleted tasks (ADMIN and above)."
    )


def task_filter(given: TaskFilterInput | None) -> TaskFilter:
    if given is None:
        return TaskFilter()
    if given.label_ids is not None and len(given.label_ids) > MAX_FILTER_IDS:
        raise InvalidInput(f"at most {MAX_FILTER_IDS} labelIds", field=["filter", "labelIds"])
    if given.search is not None and len(given.search) > 200:
        raise InvalidInput("search is at most 200 characters", field=["filter", "search"])
    assignee = None
    if given.assignee_id is not None:
        assignee = require_valid_id(given.assignee_id, ["filter", "assigneeId"])[1]
    labels = None
    if given.label_ids is not None:
        for gid in given.label_ids:
            require_valid_id(gid, ["filter", "labelIds"])
        labels = tuple(parse_ids(given.label_ids, "Label", ["filter", "labelIds"]))
    return TaskFilter(
        statuses=tuple(given.status) if given.status is not None else None,
        assignee_id=assignee,
        unassigned=given.unassigned,
        label_ids=labels,
        due_before=given.due_before,
        search=given.search,
        include_deleted=bool(given.include_deleted),
    )
