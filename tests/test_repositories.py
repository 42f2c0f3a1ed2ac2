"""The generic repository and keyset pagination, against real PostgreSQL."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select

from db.errors import AlreadyExists, Conflict, InvalidInput
from db.ids import uuid7
from db.models import Label, Project, Task, TaskPriority, User, Workspace
from db.repositories import (
    LabelRepository,
    PageArgs,
    ProjectRepository,
    TaskRepository,
    UserRepository,
)
from db.repositories.tasks import TASK_ORDERS, CreateRefused
from db.session import DbSession


async def make_project(db: DbSession) -> Project:
    ws = Workspace(name="W", slug=f"w-{uuid.uuid4().hex[:8]}")
    db.add(ws)
    await db.flush()
    return await ProjectRepository(db).add(Project(workspace_id=ws.id, key="WEB", name="Web"))


async def make_tasks(db: DbSession, project: Project, n: int) -> list[Task]:
    """Tasks with many equal sort keys and null due dates, to stress the tie-breakers."""
    rng = random.Random(1)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    tasks = [
        Task(
            workspace_id=project.workspace_id,
            project_id=project.id,
            number=i + 1,
            title=f"t{i}",
            priority=rng.choice(list(TaskPriority)),
            due_at=None if i % 3 == 0 else base + timedelta(days=rng.randint(0, 5)),
            created_at=base + timedelta(hours=rng.randint(0, 3)),
            updated_at=base,
        )
        for i in range(n)
    ]
    await TaskRepository(db).add_all(tasks)
    return tasks


async def test_get_many_keeps_key_order_and_gives_none_for_missing(db: DbSession) -> None:
    repo = UserRepository(db)
    users = [User(email=f"u{i}@x.test", display_name=f"U{i}", password_hash="x") for i in range(3)]
    await repo.add_all(users)
    missing = uuid7()
    ids = [users[2].id, missing, users[0].id, users[2].id]
    got = await repo.get_many(ids)
    assert [u.id if u else None for u in got] == [users[2].id, None, users[0].id, users[2].id]
    assert await repo.get(missing) is None
    assert await repo.get_many([]) == []


async def test_duplicate_key_becomes_a_domain_error(db: DbSession) -> None:
    repo = UserRepository(db)
    await repo.add(User(email="same@x.test", display_name="A", password_hash="x"))
    with pytest.raises(AlreadyExists) as exc:
        await repo.add(User(email="same@x.test", display_name="B", password_hash="x"))
    assert exc.value.constraint == "uq_users_email"
    # The request's transaction is still usable after the violation.
    assert (await repo.get_by_email("same@x.test")) is not None


async def test_stale_version_becomes_conflict(db: DbSession) -> None:
    project = await make_project(db)
    assert project.version == 1
    project.name = "Renamed"
    await ProjectRepository(db).flush(project)
    assert project.version == 2
    # Someone else's update happened in between: our in-memory version is now stale.
    await db.execute(Project.__table__.update().where(Project.id == project.id).values(version=3))
    project.name = "Lost update"
    with pytest.raises(Conflict):
        await ProjectRepository(db).flush(project)


@pytest.mark.parametrize("order_key", sorted(TASK_ORDERS), ids=lambda k: f"{k[0]}-{k[1]}")
async def test_keyset_pages_cover_everything_once_both_ways(
    db: DbSession, order_key: tuple[str, bool]
) -> None:
    project = await make_project(db)
    await make_tasks(db, project, 53)
    repo = TaskRepository(db)
    order = TASK_ORDERS[order_key]
    stmt = repo.in_project(project.id)
    expected = [t.id for t in await db.scalars(stmt.order_by(*order.order_by()))]

    forward: list[uuid.UUID] = []
    after = None
    while True:
        page = await repo.page(stmt, order, PageArgs(first=7, after=after))
        forward += [t.id for t in page.items]
        if not page.has_next_page:
            break
        after = page.end_cursor
    assert forward == expected

    backward: list[uuid.UUID] = []
    before = None
    while True:
        page = await repo.page(stmt, order, PageArgs(last=6, before=before))
        backward = [t.id for t in page.items] + backward
        if not page.has_previous_page:
            break
        before = page.start_cursor
    assert backward == expected


async def test_cursor_from_another_ordering_is_refused(db: DbSession) -> None:
    project = await make_project(db)
    await make_tasks(db, project, 3)
    repo = TaskRepository(db)
    stmt = repo.in_project(project.id)
    page = await repo.page(stmt, TASK_ORDERS[("NUMBER", False)], PageArgs(first=1))
    with pytest.raises(InvalidInput):
        await repo.page(stmt, TASK_ORDERS[("DUE_AT", True)], PageArgs(after=page.end_cursor))
    with pytest.raises(InvalidInput):
        await repo.page(stmt, TASK_ORDERS[("NUMBER", False)], PageArgs(after="not-a-cursor"))


@pytest.mark.parametrize(
    "args", [PageArgs(first=101), PageArgs(last=-1), PageArgs(first=1, last=1)]
)
async def test_page_size_limits(db: DbSession, args: PageArgs) -> None:
    repo = TaskRepository(db)
    with pytest.raises(InvalidInput):
        await repo.page(repo.in_project(uuid7()), TASK_ORDERS[("NUMBER", False)], args)


async def test_task_numbers_are_allocated_in_order(db: DbSession) -> None:
    project = await make_project(db)
    repo = TaskRepository(db)
    made = [await repo.create(project.id, {"title": f"t{i}"}) for i in range(3)]
    tasks = [task for task, _ in made]
    assert [t.number for t in tasks] == [1, 2, 3]
    assert {key for _, key in made} == {project.key}
    assert {(t.workspace_id, t.project_id) for t in tasks} == {(project.workspace_id, project.id)}
    assert all(t.version == 1 and t.created_at is not None for t in tasks)
    counter = await db.scalar(select(Project.task_counter).where(Project.id == project.id))
    assert counter == 3


async def test_a_create_whose_checks_fail_writes_nothing_and_leaves_the_number(
    db: DbSession,
) -> None:
    project = await make_project(db)
    repo = TaskRepository(db)
    savepoint = await db.session.begin_nested()
    with pytest.raises(CreateRefused):
        await repo.create(project.id, {"title": "t", "assignee_id": uuid7()})  # no such member
    await savepoint.rollback()
    # The transaction goes on, and the number the failed create took is given back.
    assert (await repo.create(project.id, {"title": "t"}))[0].number == 1


async def test_a_task_is_created_with_its_labels_in_one_statement(db: DbSession) -> None:
    project = await make_project(db)
    labels = [Label(workspace_id=project.workspace_id, name=n, color="#000000") for n in "ab"]
    await LabelRepository(db).add_all(labels)
    repo = TaskRepository(db)
    ids = [labels[1].id, labels[0].id, labels[1].id]  # repeats are one label
    task, _ = await repo.create(project.id, {"title": "t"}, ids)
    (found,) = await repo.labels_of([task.id])
    assert [label.name for label in found] == ["a", "b"]
    savepoint = await db.session.begin_nested()
    with pytest.raises(CreateRefused):
        await repo.create(project.id, {"title": "t"}, [uuid7()])  # no such label
    await savepoint.rollback()
    assert (await repo.create(project.id, {"title": "t"}))[0].number == 2


async def test_creating_a_task_in_a_missing_project_writes_nothing(db: DbSession) -> None:
    project = await make_project(db)
    await db.execute(delete(Project).where(Project.id == project.id))
    with pytest.raises(CreateRefused):
        await TaskRepository(db).create(project.id, {"title": "t"})


async def test_soft_delete_and_restore(db: DbSession) -> None:
    project = await make_project(db)
    (task,) = await make_tasks(db, project, 1)
    repo = TaskRepository(db)
    await repo.delete(task)
    assert task.deleted_at is not None
    assert await db.scalars(repo.in_project(project.id)) == []
    assert len(await db.scalars(repo.in_project(project.id, include_deleted=True))) == 1
    await repo.restore(task)
    assert [t.id for t in await db.scalars(repo.in_project(project.id))] == [task.id]
