"""Task events: a NOTIFY inside the writing transaction, sent with the change's audit row, so
PostgreSQL delivers it only when that transaction commits (a rolled-back write, or a field rolled
back to its savepoint, sends nothing). The payload carries ids and the kind only; subscribers
load the task themselves, with their own permissions."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from db.models import Task
from graphql_api.context import Context

CHANNEL = "task_events"


def payload(kind: str, task: Task, actor: object) -> str:
    """The NOTIFY's text. A task not yet written may have no workspace yet: its statement sets
    "workspace" (TaskRepository.create)."""
    return orjson.dumps(
        {
            "kind": kind,
            "task": str(task.id),
            "workspace": _text(task.workspace_id),
            "project": str(task.project_id),
            "actor": _text(actor),
            "at": datetime.now(UTC).isoformat(),
        }
    ).decode()


def _text(value: object) -> str | None:
    return str(value) if value else None


def notification(ctx: Context, kind: str, task: Task) -> tuple[str, str]:
    """The NOTIFY (channel, payload) of a task event, for audit.record to send with the
    change's audit row."""
    return CHANNEL, payload(kind, task, ctx.viewer_id)
