"""Reading tasks: the board query's SQL budget, keyset paging in every order, filters, search."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, update

from db.ids import uuid7
from db.models import Project, Task, TaskLabel, TaskPriority, TaskStatus
from db.session import DbSession
from graphql_api.schema.relay import from_global_id
from tests.conftest import SqlCounter
from tests.gql import Account, Api, comment, label, project, task

BOARD = """
query($id: ID!, $first: Int!) {
  node(id: $id) {
    ... on Project {
      tasks(first: $first) {
        totalCount
        pageInfo { hasNextPage endCursor }
        nodes {
          identifier title status priority dueAt
          assignee { displayName }
          labels { name color }
          comments { totalCount }
        }
      }
    }
  }
}"""


async def bulk_tasks(
    db: DbSession, project_gid: str, workspace_gid: str, n: int, users: list[str], labels: list[str]
) -> None:
    """Many tasks straight into the database (the API path is tested elsewhere): equal and null
    sort keys on purpose, so the tie-breakers are exercised."""
    rng = random.Random(237)
    project_id = from_global_id(project_gid)[1]  # type: ignore[index]
    workspace_id = from_global_id(workspace_gid)[1]  # type: ignore[index]
    base = datetime(2026, 3, 1, tzinfo=UTC)
    rows, links = [], []
    for i in range(n):
        tid = uuid7()
        rows.append(
            {
                "id": tid,
                "workspace_id": workspace_id,
                "project_id": project_id,
                "number": i + 1,
                "title": f"task {i}",
                "status": rng.choice(list(TaskStatus)),
                "priority": rng.choice(list(TaskPriority)),
                "assignee_id": from_global_id(rng.choice(users))[1] if users and i % 4 else None,  # type: ignore[index]
                "due_at": None if i % 3 == 0 else base + timedelta(days=rng.randint(0, 9)),
                "created_at": base + timedelta(hours=rng.randint(0, 20)),
                "updated_at": base + timedelta(minutes=rng.randint(0, 5)),
            }
        )
        for lid in rng.sample(labels, rng.randint(0, len(labels))):
            links.append(
                {"task_id": tid, "label_id": from_global_id(lid)[1], "workspace_id": workspace_id}
            )  # type: ignore[index]
    await db.execute(insert(Task), rows)
    await db.execute(
        update(Project)
        .where(Project.id == project_id)
        .values(task_counter=Project.task_counter + n)
    )
    if links:
        await db.execute(insert(TaskLabel), links)


async def board_setup(api: Api, db: DbSession, n: int) -> tuple[Account, dict[str, Any]]:
    owner = await api.register()
    ws = await api.workspace(owner)
    mate = await api.register()
    await api.add(owner, ws["id"], mate, "MEMBER")
    proj = await project(api, owner, ws["id"])
    labels = [(await label(api, owner, ws["id"], name))["id"] for name in ("bug", "ui", "api")]
    await bulk_tasks(db, proj["id"], ws["id"], n, [owner.id, mate.id], labels)
    return owner, proj


async def test_board_query_sql_statements_do_not_grow_with_page_size(
    api: Api, resolver_api: Api, db: DbSession, sql_counter: SqlCounter
) -> None:
    owner, proj = await board_setup(api, db, 60)
    some = await api.ok(BOARD, {"id": proj["id"], "first": 3}, owner.token)
    task_gid = None
    for n in some["node"]["tasks"]["nodes"]:
        assert n["identifier"].startswith("WEB-")
    # A few comments so comment counts are not all zero.
    first_task = await api.ok(
        "query($id: ID!) { node(id: $id) { ... on Project { tasks(first: 1) { nodes { id } } } } }",
        {"id": proj["id"]},
        owner.token,
    )
    task_gid = first_task["node"]["tasks"]["nodes"][0]["id"]
    await comment(api, owner, task_gid)
    counts = {}
    for path, client in (("fast", api), ("resolvers", resolver_api)):
        for size in (5, 50):
            sql_counter.reset()
            data = await client.ok(BOARD, {"id": proj["id"], "first": size}, owner.token)
            assert len(data["node"]["tasks"]["nodes"]) == size
            counts[path, size] = sql_counter.count
    # Fast path: one statement builds the whole answer. Resolvers: project, tasks page, their
    # count, assignees, labels, comment counts; each batched. (No SET LOCAL statement_timeout:
    # the limit is the connection's default, and the deadline is far.)
    assert counts == {("fast", 5): 1, ("fast", 50): 1, ("resolvers", 5): 6, ("resolvers", 50): 6}


ORDERS = [
    (f, d)
    for f in ("CREATED_AT", "UPDATED_AT", "DUE_AT", "PRIORITY", "NUMBER")
    for d in ("ASC", "DESC")
]
PAGE = """
query($id: ID!, $first: Int, $after: String, $last: Int, $before: String, $order: TaskOrder) {
  node(id: $id) { ... on Project {
    tasks(first: $first, after: $after, last: $last, before: $before, orderBy: $order) {
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      nodes { number createdAt updatedAt dueAt priority }
    } } }
}"""
PRIORITY_RANK = {p.value: i for i, p in enumerate(TaskPriority)}


def sort_key(field: str, t: dict[str, Any]) -> Any:
    value = {
        "CREATED_AT": t["createdAt"],
        "UPDATED_AT": t["updatedAt"],
        "DUE_AT": t["dueAt"],
        "PRIORITY": PRIORITY_RANK[t["priority"]],
        "NUMBER": t["number"],
    }[field]
    return value


@pytest.mark.parametrize(("field", "direction"), ORDERS)
async def test_paging_both_ways_visits_every_task_once_in_order(
    api: Api, db: DbSession, field: str, direction: str
) -> None:
    owner, proj = await board_setup(api, db, 237)
    order = {"field": field, "direction": direction}
    forward: list[dict[str, Any]] = []
    after = None
    while True:
        page = (
            await api.ok(
                PAGE, {"id": proj["id"], "first": 50, "after": after, "order": order}, owner.token
            )
        )["node"]["tasks"]
        forward += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    backward: list[dict[str, Any]] = []
    before = None
    while True:
        page = (
            await api.ok(
                PAGE, {"id": proj["id"], "last": 40, "before": before, "order": order}, owner.token
            )
        )["node"]["tasks"]
        backward = page["nodes"] + backward
        if not page["pageInfo"]["hasPreviousPage"]:
            break
        before = page["pageInfo"]["startCursor"]
    numbers = [t["number"] for t in forward]
    assert sorted(numbers) == list(range(1, 238))  # every task exactly once
    assert [t["number"] for t in backward] == numbers  # the same sequence walking back
    keys = [sort_key(field, t) for t in forward]
    present = [k for k in keys if k is not None]
    assert present == sorted(present, reverse=direction == "DESC")
    assert keys[len(present) :] == [None] * (len(keys) - len(present))  # nulls last


async def test_filters_and_search(api: Api) -> None:
    owner = await api.register()
    ws = await api.workspace(owner)
    mate = await api.register()
    await api.add(owner, ws["id"], mate, "MEMBER")
    proj = await project(api, owner, ws["id"])
    bug, ui = (
        (await label(api, owner, ws["id"], "bug"))["id"],
        (await label(api, owner, ws["id"], "ui"))["id"],
    )
    await task(
        api,
        owner,
        proj["id"],
        title="Login button is broken",
        status="IN_PROGRESS",
        assigneeId=mate.id,
        labelIds=[bug, ui],
        dueAt="2026-01-10T00:00:00Z",
    )
    await task(
        api,
        owner,
        proj["id"],
        title="Billing export",
        description="CSV export of invoices",
        status="TODO",
        labelIds=[bug],
        dueAt="2026-02-10T00:00:00Z",
    )
    await task(api, owner, proj["id"], title="Dark mode", status="DONE", assigneeId=owner.id)
    query = "query($id: ID!, $f: TaskFilter) { node(id: $id) { ... on Project { tasks(filter: $f, orderBy: {field: NUMBER, direction: ASC}) { totalCount nodes { number } } } } }"

    async def numbers(f: dict[str, Any]) -> list[int]:
        data = (await api.ok(query, {"id": proj["id"], "f": f}, owner.token))["node"]["tasks"]
        found = [n["number"] for n in data["nodes"]]
        assert data["totalCount"] == len(found)
        return found

    assert await numbers({"status": ["TODO", "DONE"]}) == [2, 3]
    assert await numbers({"assigneeId": mate.id}) == [1]
    assert await numbers({"unassigned": True}) == [2]
    assert await numbers({"unassigned": False}) == [1, 3]
    assert await numbers({"labelIds": [bug]}) == [1, 2]
    assert await numbers({"labelIds": [bug, ui]}) == [1]  # all of them
    assert await numbers({"dueBefore": "2026-02-01T00:00:00Z"}) == [1]
    assert await numbers({"search": "export"}) == [2]  # description counts too
    assert await numbers({"search": "invoice"}) == [2]  # stemmed: invoices
    assert await numbers({"search": '"login button"'}) == [1]
    assert await numbers({"search": "export -billing"}) == []
    assert await numbers({"search": "dark or login"}) == [1, 3]
    assert await numbers({"search": "button", "status": ["IN_PROGRESS"], "labelIds": [ui]}) == [1]


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ({"first": 101}, "BAD_REQUEST"),
        ({"first": -1}, "BAD_REQUEST"),
        ({"after": "bogus"}, "BAD_REQUEST"),
    ],
)
async def test_bad_page_arguments_are_clear_errors(
    api: Api, args: dict[str, Any], code: str
) -> None:
    owner = await api.register()
    ws = await api.workspace(owner)
    proj = await project(api, owner, ws["id"])
    body = await api.post(PAGE, {"id": proj["id"], **args}, owner.token)
    assert body["errors"][0]["extensions"]["code"] == code
    assert body["errors"][0]["message"]
