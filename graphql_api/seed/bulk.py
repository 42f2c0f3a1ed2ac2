"""`graphql-api seed --tasks N`: data at scale for benchmarks, loaded with COPY.

Workspaces `<prefix>-1..W`, each with 5 members (plus one shared benchmark user who belongs to
all of them), 5 labels and P projects; N tasks spread evenly, each with 0-3 labels and 0-3
comments. A seeded random generator makes the content repeatable.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from db.ids import uuid7
from db.models import Role, TaskPriority, TaskStatus
from db.urls import asyncpg_dsn
from graphql_api.auth.passwords import hash_password

BENCH_EMAIL = "bench@example.com"
BENCH_PASSWORD = "bench-password"
CHUNK = 20_000
_T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class BulkResult:
    workspaces: int
    projects: int
    tasks: int
    comments: int
    task_labels: int
    seconds: float


class AlreadySeeded(Exception):
    pass


async def seed_bulk(
    url: str, tasks: int, workspaces: int = 10, projects: int = 10, prefix: str = "load"
) -> BulkResult:
    started = time.perf_counter()
    rng = random.Random(7)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        if await conn.fetchval("SELECT 1 FROM workspaces WHERE slug = $1", f"{prefix}-1"):
            raise AlreadySeeded(f"workspace {prefix}-1 exists already; choose another --prefix")
        async with conn.transaction():
            result = await _load(conn, rng, tasks, workspaces, projects, prefix)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    result.seconds = time.perf_counter() - started
    return result


async def _copy(conn: asyncpg.Connection, table: str, columns: list[str], rows: list[Any]) -> None:
    if rows:
        await conn.copy_records_to_table(table, records=rows, columns=columns)


async def _load(
    conn: asyncpg.Connection, rng: random.Random, tasks: int, n_ws: int, n_proj: int, prefix: str
) -> BulkResult:
    pw = hash_password(BENCH_PASSWORD)
    bench_user = await conn.fetchval("SELECT id FROM users WHERE email = $1", BENCH_EMAIL)
    users: list[tuple[Any, ...]] = []
    if bench_user is None:
        bench_user = uuid7()
        users.append((bench_user, BENCH_EMAIL, pw, "Bench User"))
    ws_rows, members, labels, project_rows = [], [], [], []
    ws_users: dict[uuid.UUID, list[uuid.UUID]] = {}
    ws_labels: dict[uuid.UUID, list[uuid.UUID]] = {}
    for w in range(1, n_ws + 1):
        ws = uuid7()
        ws_rows.append((ws, f"Load {w}", f"{prefix}-{w}"))
        members.append((uuid7(), ws, bench_user, Role.ADMIN.value))
        people = []
        for u in range(5):
            uid = uuid7()
            users.append((uid, f"{prefix}-{w}-{u}@example.com", pw, f"User {w}.{u}"))
            members.append((uuid7(), ws, uid, Role.MEMBER.value))
            people.append(uid)
        ws_users[ws] = people
        ws_labels[ws] = [uuid7() for _ in range(5)]
        for i, lid in enumerate(ws_labels[ws]):
            labels.append((lid, ws, f"label-{i}", f"#{rng.randrange(0x1000000):06X}"))
        for p in range(n_proj):
            project_rows.append((uuid7(), ws, f"P{p}", f"Project {w}.{p}"))
    per_project, extra = divmod(tasks, len(project_rows))
    sizes = [per_project + (1 if i < extra else 0) for i in range(len(project_rows))]
    await _copy(conn, "users", ["id", "email", "password_hash", "display_name"], users)
    await _copy(conn, "workspaces", ["id", "name", "slug"], ws_rows)
    await _copy(conn, "memberships", ["id", "workspace_id", "user_id", "role"], members)
    await _copy(conn, "labels", ["id", "workspace_id", "name", "color"], labels)
    await _copy(
        conn,
        "projects",
        ["id", "workspace_id", "key", "name", "task_counter"],
        [(*row, n) for row, n in zip(project_rows, sizes, strict=True)],
    )
    statuses = [s.value for s in TaskStatus]
    priorities = [p.value for p in TaskPriority]
    counts = {"comments": 0, "task_labels": 0}
    task_buf: list[tuple[Any, ...]] = []
    comment_buf: list[tuple[Any, ...]] = []
    label_buf: list[tuple[Any, ...]] = []

    async def flush() -> None:
        await _copy(
            conn,
            "tasks",
            [
                "id",
                "workspace_id",
                "project_id",
                "number",
                "title",
                "description",
                "status",
                "priority",
                "assignee_id",
                "created_by_id",
                "due_at",
                "created_at",
                "updated_at",
            ],
            task_buf,
        )
        await _copy(conn, "task_labels", ["task_id", "label_id", "workspace_id"], label_buf)
        await _copy(
            conn,
            "comments",
            ["id", "workspace_id", "task_id", "author_id", "body", "created_at", "updated_at"],
            comment_buf,
        )
        counts["comments"] += len(comment_buf)
        counts["task_labels"] += len(label_buf)
        task_buf.clear()
        comment_buf.clear()
        label_buf.clear()

    for index, ((pid, ws, key, _), n) in enumerate(zip(project_rows, sizes, strict=True)):
        people = ws_users[ws]
        for number in range(1, n + 1):
            tid = uuid7()
            created = _T0 + timedelta(minutes=number * 7 + index)
            due = created + timedelta(days=rng.randint(1, 60)) if rng.random() < 0.6 else None
            task_buf.append(
                (
                    tid,
                    ws,
                    pid,
                    number,
                    f"Task {key}-{number}: {rng.choice(_WORDS)} {rng.choice(_WORDS)}",
                    f"Work on {rng.choice(_WORDS)} and {rng.choice(_WORDS)}."
                    if rng.random() < 0.7
                    else None,
                    rng.choice(statuses),
                    rng.choice(priorities),
                    rng.choice(people) if rng.random() < 0.8 else None,
                    rng.choice(people),
                    due,
                    created,
                    created,
                )
            )
            for lid in rng.sample(ws_labels[ws], rng.randint(0, 3)):
                label_buf.append((tid, lid, ws))
            for c in range(rng.randint(0, 3)):
                at = created + timedelta(hours=c + 1)
                comment_buf.append(
                    (uuid7(), ws, tid, rng.choice(people), f"Comment {c} on {key}-{number}", at, at)
                )
            if len(task_buf) >= CHUNK:
                await flush()
    await flush()
    return BulkResult(
        n_ws, len(project_rows), tasks, counts["comments"], counts["task_labels"], 0.0
    )


_WORDS = [
    "login",
    "billing",
    "search",
    "export",
    "cache",
    "board",
    "labels",
    "avatars",
    "emails",
    "webhooks",
    "mobile",
    "onboarding",
    "reports",
    "permissions",
    "audit",
    "sync",
    "import",
]
