"""Task counters (project_task_counts): equal to counting the tasks after concurrent writers,
rollbacks and the migration that fills them; and what answers totalCount reads them."""

from __future__ import annotations

import asyncio
import random
import uuid

import asyncpg
import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.engine import create_engine
from db.errors import DomainError
from db.ids import uuid7
from db.json_sql import Params
from db.migrations import downgrade, upgrade
from db.models import Project, Task, TaskStatus, Workspace
from db.repositories import TaskRepository
from db.repositories.tasks import TaskFilter
from db.session import DbSession
from graphql_api.seed.bulk import seed_bulk
from tests.databases import create_database, drop_database, dsn, new_name

# Rows where the counters and count(*) disagree (a zero counter stands for no tasks).
DRIFT = """
SELECT t.project_id, t.status, t.deleted, t.count AS counted, c.count AS kept
FROM (SELECT project_id, status, deleted_at IS NOT NULL AS deleted, count(*) AS count
      FROM tasks GROUP BY 1, 2, 3) AS t
FULL JOIN (SELECT * FROM project_task_counts WHERE count <> 0) AS c
  USING (project_id, status, deleted)
WHERE t.count IS DISTINCT FROM c.count
"""


async def _fetch(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn(url))
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


async def _projects(maker: async_sessionmaker[AsyncSession], n: int) -> list[Project]:
    async with maker() as s, s.begin():
        ws = Workspace(name="Counts", slug=f"counts-{uuid.uuid4().hex[:8]}")
        s.add(ws)
        await s.flush()
        projects = [Project(workspace_id=ws.id, key=f"P{i}", name=f"P{i}") for i in range(n)]
        s.add_all(projects)
    return projects


class _RollBack(Exception):
    pass


async def _writer(
    maker: async_sessionmaker[AsyncSession], projects: list[Project], seed: int, rounds: int
) -> None:
    """Creates, status changes, deletes, restores, hard deletes and multi-row updates, each in a
    transaction of its own that commits (or, now and then, rolls back)."""
    rng = random.Random(seed)
    statuses = list(TaskStatus)
    for _ in range(rounds):
        project = rng.choice(projects)
        async with maker() as s:
            db = DbSession(s)
            repo = TaskRepository(db)
            op = rng.choice(["create", "create", "status", "status", "delete", "restore", "bulk"])
            try:
                async with s.begin():
                    ids = list(
                        await db.scalars(select(Task.id).where(Task.project_id == project.id))
                    )
                    if not ids:
                        op = "create"
                    if op == "create":
                        await repo.create(
                            project.id, {"title": "t", "status": rng.choice(statuses)}
                        )
                    elif op == "bulk":  # many tasks, several statuses, one statement
                        await db.execute(
                            update(Task)
                            .where(
                                Task.project_id == project.id, Task.number % 3 == rng.randint(0, 2)
                            )
                            .values(status=rng.choice(statuses))
                        )
                    else:
                        found = await repo.get(rng.choice(ids))
                        if found is None:  # hard deleted meanwhile
                            raise _RollBack
                        if op == "status":
                            found.status = rng.choice(statuses)
                            await repo.flush(found)
                        elif op == "delete":
                            if rng.random() < 0.2:
                                await db.execute(delete(Task).where(Task.id == found.id))
                            elif found.deleted_at is None:
                                await repo.delete(found)
                        elif found.deleted_at is not None:
                            await repo.restore(found)
                    if rng.random() < 0.15:
                        raise _RollBack  # nothing of it may stay in the counters
            except _RollBack:
                pass
            except DomainError:
                pass  # a concurrent writer changed the task first (stale version)
            except InvalidRequestError:
                pass  # ... or removed it: the stale task cannot be reloaded


async def test_counters_equal_counting_after_concurrent_writers(fresh_database_url: str) -> None:
    engine = create_engine(fresh_database_url, pool_size=6, max_overflow=0)
    maker = async_sessionmaker(engine, expire_on_commit=False)
    try:
        projects = await _projects(maker, 2)
        await asyncio.gather(*(_writer(maker, projects, seed, 30) for seed in range(5)))
    finally:
        await engine.dispose()
    assert await _fetch(fresh_database_url, DRIFT) == []
    counted = await _fetch(fresh_database_url, "SELECT count(*) AS n FROM tasks")
    kept = await _fetch(fresh_database_url, "SELECT sum(count) AS n FROM project_task_counts")
    assert counted[0]["n"] == kept[0]["n"] > 0


async def test_a_rolled_back_write_leaves_the_counters(fresh_database_url: str) -> None:
    engine = create_engine(fresh_database_url, pool_size=2, max_overflow=0)
    maker = async_sessionmaker(engine, expire_on_commit=False)
    try:
        [project] = await _projects(maker, 1)
        async with maker() as s, s.begin():
            await TaskRepository(DbSession(s)).create(project.id, {"title": "kept"})
        before = await _fetch(fresh_database_url, "SELECT * FROM project_task_counts")
        with pytest.raises(_RollBack):
            async with maker() as s, s.begin():
                repo = TaskRepository(DbSession(s))
                made, _ = await repo.create(
                    project.id, {"title": "gone", "status": TaskStatus.DONE}
                )
                made.status = TaskStatus.CANCELED
                await repo.flush(made)
                raise _RollBack
    finally:
        await engine.dispose()
    assert await _fetch(fresh_database_url, "SELECT * FROM project_task_counts") == before
    assert await _fetch(fresh_database_url, DRIFT) == []


async def test_deleting_a_project_or_workspace_drops_its_counters(
    fresh_database_url: str,
) -> None:
    engine = create_engine(fresh_database_url, pool_size=2, max_overflow=0)
    maker = async_sessionmaker(engine, expire_on_commit=False)
    try:
        first, second = await _projects(maker, 2)
        async with maker() as s, s.begin():
            for p in (first, second):
                await TaskRepository(DbSession(s)).create(p.id, {"title": "t"})
        async with maker() as s, s.begin():
            await s.execute(delete(Project).where(Project.id == first.id))
        assert await _fetch(fresh_database_url, DRIFT) == []
        async with maker() as s, s.begin():
            await s.execute(delete(Workspace).where(Workspace.id == second.workspace_id))
    finally:
        await engine.dispose()
    assert await _fetch(fresh_database_url, "SELECT * FROM project_task_counts") == []


async def test_the_migration_fills_the_counters_and_its_downgrade_drops_them(
    pg_admin_url: str,
) -> None:
    name = new_name("counts")
    url = await create_database(pg_admin_url, name)
    try:
        await upgrade(url, "0003")
        await seed_bulk(url, 300, workspaces=2, projects=3)
        conn = await asyncpg.connect(dsn(url))
        try:
            await conn.execute("UPDATE tasks SET deleted_at = now() WHERE number % 5 = 0")
        finally:
            await conn.close()
        await upgrade(url)
        assert await _fetch(url, DRIFT) == []
        kept = await _fetch(url, "SELECT sum(count) AS n FROM project_task_counts")
        assert kept[0]["n"] == 300
        await downgrade(url, "0003")
        leftovers = await _fetch(
            url,
            "SELECT 'table' FROM pg_tables WHERE tablename = 'project_task_counts' UNION ALL "
            "SELECT 'function' FROM pg_proc WHERE proname = 'project_task_counts_apply' UNION ALL "
            "SELECT 'trigger' FROM pg_trigger WHERE tgname LIKE 'project_task_counts%'",
        )
        assert leftovers == []
    finally:
        await drop_database(pg_admin_url, name)


@pytest.mark.parametrize(
    ("f", "reads_tasks"),
    [
        (TaskFilter(), False),
        (TaskFilter(statuses=(TaskStatus.TODO, TaskStatus.IN_PROGRESS)), False),
        (TaskFilter(include_deleted=True), False),
        (TaskFilter(search="   "), False),  # a blank search filters nothing
        (TaskFilter(statuses=(TaskStatus.TODO,), search="login"), True),
        (TaskFilter(unassigned=True), True),
    ],
)
async def test_what_a_project_total_reads(db: DbSession, f: TaskFilter, reads_tasks: bool) -> None:
    """The plan of the statement that answers totalCount: the counters' primary key, and no
    scan of tasks, unless a filter the counters do not keep is given."""
    params = Params()  # as the fast path embeds it
    sql = params.embed(TaskRepository(db).total_in_project(f, uuid7()))
    conn = await db.session.connection()
    result = await conn.exec_driver_sql(f"EXPLAIN {sql}", tuple(params.values))
    plan = "\n".join(r[0] for r in result.all())
    assert ("on tasks" in plan) == reads_tasks, plan
    assert ("project_task_counts" in plan) != reads_tasks, plan
