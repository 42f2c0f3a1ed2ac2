"""The CLI's clear messages, migrations through it, and both kinds of seed data."""

from __future__ import annotations

import asyncio
import socket

import asyncpg
import pytest

from graphql_api.cli import main
from graphql_api.seed.demo import DEMO_SLUG, PROJECTS, TITLES
from tests.databases import dsn


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def fetch(url: str, sql: str) -> list[asyncpg.Record]:
    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn(url))
        try:
            return await conn.fetch(sql)
        finally:
            await conn.close()

    return asyncio.run(go())


def test_bad_database_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://root@localhost/app")
    code, _, err = run(capsys, "migrate", "current")
    assert code == 1
    assert "DATABASE_URL must be a PostgreSQL URL" in err


def test_unreachable_database(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:secret@127.0.0.1:1/app")
    code, _, err = run(capsys, "migrate", "current")
    assert code == 1
    assert "cannot connect to the database at postgresql+asyncpg://app:***@127.0.0.1:1/app" in err
    assert "secret" not in err


def test_busy_port(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@127.0.0.1:1/app")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        code, _, err = run(capsys, "serve", "--port", str(port))
    assert code == 1
    assert f"port {port} on 127.0.0.1 is already in use" in err


def test_migrate_down_and_up(
    fresh_database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", fresh_database_url)
    assert run(capsys, "migrate", "downgrade", "base")[0] == 0
    assert fetch(fresh_database_url, "SELECT to_regclass('tasks') AS t")[0]["t"] is None
    assert run(capsys, "migrate", "upgrade")[0] == 0
    assert fetch(fresh_database_url, "SELECT to_regclass('tasks') AS t")[0]["t"] == "tasks"


def test_seed_demo_is_deterministic_and_idempotent(
    fresh_database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", fresh_database_url)
    code, out, _ = run(capsys, "seed", "--demo")
    assert code == 0
    assert "demo workspace 'acme' created" in out
    assert "alice@example.com / demo-password" in out
    tasks = fetch(
        fresh_database_url,
        "SELECT p.key, t.number, t.title, t.id FROM tasks t JOIN projects p ON p.id = t.project_id "
        "ORDER BY p.key, t.number",
    )
    assert len(tasks) == len(PROJECTS) * len(TITLES)
    assert (tasks[0]["key"], tasks[0]["number"], tasks[0]["title"]) == ("API", 1, TITLES[0])
    assert str(tasks[0]["id"]) == "fe3c613b-83d9-5aeb-b82d-47e8b46f2e63"
    counts = fetch(
        fresh_database_url,
        "SELECT (SELECT count(*) FROM comments) AS c, (SELECT count(*) FROM task_labels) AS l,"
        " (SELECT count(*) FROM memberships) AS m, (SELECT task_counter FROM projects"
        " WHERE key = 'WEB') AS n",
    )[0]
    assert counts["m"] == 4 and counts["n"] == len(TITLES)
    assert counts["c"] > 0 and counts["l"] > 0

    code, out, _ = run(capsys, "seed", "--demo")
    assert "already present" in out
    assert (
        fetch(
            fresh_database_url, f"SELECT count(*) AS n FROM workspaces WHERE slug = '{DEMO_SLUG}'"
        )[0]["n"]
        == 1
    )


def test_seed_bulk_through_copy(
    fresh_database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", fresh_database_url)
    code, out, _ = run(capsys, "seed", "--tasks", "250", "--workspaces", "2", "--projects", "3")
    assert code == 0, out
    assert "seeded 250 tasks" in out
    rows = fetch(
        fresh_database_url,
        "SELECT p.task_counter, count(t.id) AS n, count(DISTINCT t.number) AS distinct_numbers,"
        " max(t.number) AS top FROM projects p LEFT JOIN tasks t ON t.project_id = p.id"
        " GROUP BY p.id",
    )
    assert len(rows) == 6
    assert sum(r["n"] for r in rows) == 250
    for r in rows:
        assert r["task_counter"] == r["n"] == r["distinct_numbers"] == r["top"]
    # Every task's labels and comments stay inside its own workspace.
    leaks = fetch(
        fresh_database_url,
        "SELECT count(*) AS n FROM task_labels tl JOIN labels l ON l.id = tl.label_id"
        " JOIN tasks t ON t.id = tl.task_id WHERE l.workspace_id <> t.workspace_id",
    )
    assert leaks[0]["n"] == 0
    # COPY goes through the triggers: the task counters equal the counted tasks.
    drift = fetch(
        fresh_database_url,
        "SELECT count(*) AS n FROM (SELECT project_id, status, deleted_at IS NOT NULL AS deleted,"
        " count(*) AS count FROM tasks GROUP BY 1, 2, 3) t"
        " FULL JOIN (SELECT * FROM project_task_counts WHERE count <> 0) c"
        " USING (project_id, status, deleted) WHERE t.count IS DISTINCT FROM c.count",
    )
    assert drift[0]["n"] == 0
    assert (
        fetch(fresh_database_url, "SELECT sum(count) AS n FROM project_task_counts")[0]["n"] == 250
    )
    code, _, err = run(capsys, "seed", "--tasks", "10")
    assert code == 1 and "exists already" in err
