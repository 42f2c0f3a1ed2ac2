"""How many tasks a project has: read from `project_task_counts` when the filter is one the
counters answer (status and deleted only), counted from the tasks otherwise.

The counters are kept by triggers on `tasks` (migration 0004c), so a board's totalCount costs a
few primary-key lookups however large the project grows. Search, labels, assignee, due date and
unassigned filters still count the matching tasks.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, func, select

from db.models import ProjectTaskCount

if TYPE_CHECKING:
    from db.repositories.base import Scope
    from db.repositories.tasks import TaskFilter


def answered_by_counters(f: TaskFilter) -> bool:
    """Whether `TaskRepository.filtered(f)` narrows by nothing but status and deleted_at (the
    same tests as there: an empty label list or a blank search filters nothing)."""
    return (
        f.assignee_id is None
        and f.unassigned is None
        and not f.label_ids
        and f.due_before is None
        and not (f.search is not None and f.search.strip())
    )


def counter_rows(f: TaskFilter, scope: Scope | None) -> Select[uuid.UUID, int]:
    """The counter rows whose `count`s add up to the number of tasks `filtered(f)` returns, per
    project: the caller narrows by project."""
    c = ProjectTaskCount
    stmt = select(c.project_id, c.count)
    if scope is not None:
        stmt = stmt.where(c.workspace_id.in_(scope.workspace_ids()))
    if not f.include_deleted:
        stmt = stmt.where(c.deleted.is_(False))
    if f.statuses is not None:
        stmt = stmt.where(c.status.in_(f.statuses))
    return stmt


def counters_total(f: TaskFilter, scope: Scope | None, project_id: Any) -> Select[Any]:
    """One project's total from its counters, as a scalar statement (`project_id` may be a
    column of an enclosing query)."""
    rows = counter_rows(f, scope).where(ProjectTaskCount.project_id == project_id).subquery()
    total: ColumnElement[int] = func.coalesce(func.sum(rows.c.count), 0)
    return select(total)


def counters_by_project(
    f: TaskFilter, scope: Scope | None, project_ids: Any
) -> Select[uuid.UUID, int]:
    """(project_id, total) for each of `project_ids` that has counters, in one statement."""
    rows = counter_rows(f, scope).where(ProjectTaskCount.project_id.in_(project_ids)).subquery()
    total: ColumnElement[int] = func.sum(rows.c.count)
    return select(rows.c.project_id, total).group_by(rows.c.project_id)
