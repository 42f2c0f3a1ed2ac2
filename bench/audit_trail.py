"""The audit rows that Q4 (a task's history) and Q5 (a workspace's audit log) read. The bulk seed
loads tasks with COPY, past the API, so it writes no audit events; this adds them, once, to a
data set seeded before or after (idempotent: nothing is added when the history task has events).

Q4's task gets HISTORY_EVENTS events (a create, then updates of various fields, one by an actor
since deleted); Q5's workspace WORKSPACE_EVENTS more over its tasks, projects, comments, labels
and members. Timestamps carry microseconds, as the API's do, so their encoding is exercised.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson

from db.ids import uuid7

HISTORY_EVENTS = 30
WORKSPACE_EVENTS = 2_000
MARK = "bench-audit-trail"
_T0 = datetime(2026, 6, 1, tzinfo=UTC)
_CHANGES: list[dict[str, Any]] = [
    {"status": ["TODO", "IN_PROGRESS"]},
    {"status": ["IN_PROGRESS", "IN_REVIEW"]},
    {"priority": ["NONE", "HIGH"]},
    {"title": ["Fix the export", "Fix the CSV export"]},
    {"dueAt": [None, "2026-07-01T00:00:00+00:00"]},
    {"labelIds": [[], ["TGFiZWw6MQ=="]]},
    {"description": ["", "Steps to reproduce: open the board, filter by label."]},
]


async def ensure_audit_trail(
    conn: asyncpg.Connection, history_task: uuid.UUID, log_workspace: uuid.UUID
) -> None:
    if await conn.fetchval("SELECT 1 FROM audit_events WHERE entity_id = $1", history_task):
        return
    rng = random.Random(15)
    rows: list[tuple[Any, ...]] = []

    def event(at: datetime, ws: uuid.UUID, actor: Any, kind: str, entity: Any, action: str) -> None:
        at += timedelta(microseconds=rng.randrange(1, 1_000_000))
        changes = rng.choice(_CHANGES) if action.endswith("update") else {"created": True}
        rows.append(
            (uuid7(), ws, actor, kind, entity, action, orjson.dumps(changes).decode(), MARK, at)
        )

    task_ws = await conn.fetchval("SELECT workspace_id FROM tasks WHERE id = $1", history_task)
    people = [r["user_id"] for r in await _members(conn, task_ws)]
    for n in range(HISTORY_EVENTS):
        # One actor since deleted (actor_id set null), as the audit trail keeps them.
        actor = None if n == 7 else people[n % len(people)]
        action = "task.create" if n == 0 else "task.update"
        event(_T0 + timedelta(hours=n), task_ws, actor, "Task", history_task, action)
    members = [r["user_id"] for r in await _members(conn, log_workspace)]
    entities: dict[str, list[uuid.UUID]] = {
        kind: [r["id"] for r in await conn.fetch(sql, log_workspace)]
        for kind, sql in {
            "Task": "SELECT id FROM tasks WHERE workspace_id = $1 ORDER BY id LIMIT 500",
            "Comment": "SELECT id FROM comments WHERE workspace_id = $1 ORDER BY id LIMIT 200",
            "Project": "SELECT id FROM projects WHERE workspace_id = $1",
            "Label": "SELECT id FROM labels WHERE workspace_id = $1",
        }.items()
    }
    entities["User"] = members
    kinds = ["Task"] * 6 + ["Comment"] * 2 + ["Project", "Label", "User"]
    verbs = {"User": ("member.add", "member.change_role")}
    for n in range(WORKSPACE_EVENTS):
        kind = rng.choice(kinds)
        action = rng.choice(verbs.get(kind, (f"{kind.lower()}.create", f"{kind.lower()}.update")))
        at = _T0 + timedelta(minutes=7 * n)
        event(at, log_workspace, rng.choice(members), kind, rng.choice(entities[kind]), action)
    await conn.copy_records_to_table(
        "audit_events",
        records=rows,
        columns=[
            "id",
            "workspace_id",
            "actor_id",
            "entity_type",
            "entity_id",
            "action",
            "changes",
            "request_id",
            "created_at",
        ],
    )
    await conn.execute("ANALYZE audit_events")


async def _members(conn: asyncpg.Connection, workspace: uuid.UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT user_id FROM memberships WHERE workspace_id = $1 ORDER BY created_at, user_id",
        workspace,
    )
