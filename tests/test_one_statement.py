"""createTask alone in its operation, with a payload at hand, runs without a transaction: one
statement checks, numbers and writes the task, committing on its own (no BEGIN, SAVEPOINT or
COMMIT), so the project's counter row is locked for that statement only. A refused create reads
the checks afterwards, to say why.
Seen here in what the server's pooled connections send PostgreSQL (asyncpg's query logger),
through the app with its own pool, as users run it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import event

from db.repositories import TaskRepository
from db.urls import asyncpg_dsn
from graphql_api.app import create_app
from graphql_api.schema.relay import from_global_id
from tests.conftest import make_settings
from tests.gql import Account, Api, label, project
from tests.test_read_pool import admin_fetch

LEAN = "mutation($input: CreateTaskInput!) { createTask(input: $input) { task { id identifier number } userErrors { code } } }"
RICH = "mutation($input: CreateTaskInput!) { createTask(input: $input) { task { id assignee { id } } userErrors { code } } }"
WORKSPACE_OF = "query($id: ID!) { node(id: $id) { ... on Project { workspace { id } } } }"
TWO = """mutation($a: CreateTaskInput!, $b: CreateTaskInput!) {
  a: createTask(input: $a) { task { number } } b: createTask(input: $b) { task { number } } }"""


class Sent:
    """Every statement the pool's connections send, in order."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    def __call__(self, record: Any) -> None:
        query = record.query.strip()
        if "typeinfo_tree" not in query and "set_config('jit'" not in query:
            self.queries.append(query)  # not asyncpg's look at a type new to the connection

    def reset(self) -> list[str]:
        queries, self.queries = self.queries, []
        return queries


@asynccontextmanager
async def served_app(url: str, **settings: Any) -> AsyncIterator[tuple[Any, Api, Sent]]:
    """The app with its own pool and these settings, a client of it, and what its pool sends."""
    app = create_app(make_settings(database_url=url, **settings))
    sent = Sent()
    async with app.router.lifespan_context(app):
        engine = app.state.database.engine

        @event.listens_for(engine.sync_engine, "checkout")
        def log(dbapi_connection: Any, record: Any, proxy: Any) -> None:
            # asyncpg logs what it sends as SQL text (BEGIN, COMMIT, ROLLBACK), not prepared
            # statements, which SQLAlchemy reports before it runs them.
            dbapi_connection.driver_connection.add_query_logger(sent)

        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def statement(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
            sent.queries.append(sql.strip())

        database = app.state.database
        fetch = database.fetch

        async def fetched(sql: str, *params: Any, **options: Any) -> Any:  # committing alone
            sent.queries.append(sql.strip())
            return await fetch(sql, *params, **options)

        database.fetch = fetched

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield app, Api(http), sent


@pytest.fixture
async def served(fresh_database_url: str) -> AsyncIterator[tuple[Api, Sent]]:
    async with served_app(fresh_database_url, fast_path=True) as (_, api, sent):
        yield api, sent


async def _world(api: Api) -> tuple[Account, dict[str, Any], list[str]]:
    owner = await api.register()
    ws = await api.workspace(owner)
    proj = await project(api, owner, ws["id"], "ONE")
    labels = [(await label(api, owner, ws["id"], n))["id"] for n in ("a", "b")]
    return owner, proj, labels


def _transaction_control(queries: list[str]) -> list[str]:
    return [
        q
        for q in queries
        if q.split()[0].rstrip(";").upper()
        in {"BEGIN", "SAVEPOINT", "COMMIT", "ROLLBACK", "RELEASE"}
    ]


async def test_create_task_alone_runs_without_a_transaction(served: tuple[Api, Sent]) -> None:
    api, sent = served
    owner, proj, labels = await _world(api)
    sent.reset()
    made = await api.ok(
        LEAN, {"input": {"projectId": proj["id"], "title": "t", "labelIds": labels}}, owner.token
    )
    assert made["createTask"]["task"]["identifier"] == "ONE-1"
    queries = sent.reset()
    assert _transaction_control(queries) == [], queries
    assert len(queries) == 1 and queries[0].startswith("WITH counter"), queries


async def test_with_a_payload_to_read_or_two_fields_it_is_one_transaction(
    served: tuple[Api, Sent],
) -> None:
    api, sent = served
    owner, proj, _ = await _world(api)
    for query, variables in (
        (RICH, {"input": {"projectId": proj["id"], "title": "r", "assigneeId": owner.id}}),
        (
            TWO,
            {
                "a": {"projectId": proj["id"], "title": "a"},
                "b": {"projectId": proj["id"], "title": "b"},
            },
        ),
    ):
        sent.reset()
        await api.ok(query, variables, owner.token)
        control = [q.split()[0].rstrip(";").upper() for q in _transaction_control(sent.reset())]
        assert "BEGIN" in control and control[-1] == "COMMIT", control
    # An Idempotency-Key is claimed in the transaction, with the write.
    sent.reset()
    response = await api.http.post(
        "/graphql",
        json={"query": LEAN, "variables": {"input": {"projectId": proj["id"], "title": "k"}}},
        headers={"authorization": f"Bearer {owner.token}", "idempotency-key": "one-key"},
    )
    assert response.status_code == 200 and "errors" not in response.json()
    control = [q.split()[0].rstrip(";").upper() for q in _transaction_control(sent.reset())]
    assert "BEGIN" in control and control[-1] == "COMMIT", control


async def test_refused_creates_write_nothing_and_concurrent_ones_number_without_gaps(
    served: tuple[Api, Sent], fresh_database_url: str
) -> None:
    api, _ = served
    owner, proj, labels = await _world(api)
    refused = [
        {"projectId": proj["id"], "title": ""},  # invalid title
        {"projectId": proj["id"], "title": "x", "assigneeId": "VXNlcjow"},  # not a member
        {"projectId": proj["id"], "title": "x", "labelIds": ["TGFiZWw6MA=="]},  # no such label
    ]
    for given in refused:
        answer = (await api.post(LEAN, {"input": given}, owner.token))["data"]
        assert answer["createTask"]["task"] is None and answer["createTask"]["userErrors"]
    made = await asyncio.gather(
        *(
            api.ok(
                LEAN,
                {"input": {"projectId": proj["id"], "title": f"c{i}", "labelIds": labels}},
                owner.token,
            )
            for i in range(12)
        )
    )
    numbers = sorted(m["createTask"]["task"]["number"] for m in made)
    assert numbers == list(range(1, 13))
    conn = await asyncpg.connect(asyncpg_dsn(fresh_database_url))
    try:
        tasks = await conn.fetchval("SELECT count(*) FROM tasks")
        audits = await conn.fetchval(
            "SELECT count(*) FROM audit_events WHERE action = 'task.create'"
        )
        task_labels = await conn.fetchval("SELECT count(*) FROM task_labels")
        counted = await conn.fetchval("SELECT sum(count) FROM project_task_counts")
    finally:
        await conn.close()
    assert (tasks, audits, task_labels, counted) == (12, 12, 24, 12)


@pytest.mark.parametrize(
    ("change", "which", "code"),
    [
        ("UPDATE projects SET archived_at = now() WHERE id = $1", 0, "CONFLICT"),
        ("UPDATE memberships SET role = 'VIEWER' WHERE user_id = $1", 1, "FORBIDDEN"),
        ("DELETE FROM memberships WHERE user_id = $1", 2, "INVALID_INPUT"),
        ("UPDATE labels SET deleted_at = now() WHERE id = $1", 3, "NOT_FOUND"),
    ],
)
async def test_a_check_that_fails_refuses_the_one_statement(
    served: tuple[Api, Sent],
    fresh_database_url: str,
    change: str,
    which: int,
    code: str,
) -> None:
    """The project archived, the creator demoted, the assignee removed or a label deleted: the
    write takes no number and writes nothing, and the checks read after it give the userError,
    still without a transaction."""
    api, sent = served
    owner, proj, labels = await _world(api)
    ws_id = (await api.ok(WORKSPACE_OF, {"id": proj["id"]}, owner.token))["node"]["workspace"]["id"]
    creator = await api.register("creator")
    assignee = await api.register("assignee")
    await api.add(owner, ws_id, creator, "MEMBER")
    await api.add(owner, ws_id, assignee, "MEMBER")
    ids = [from_global_id(g)[1] for g in (proj["id"], creator.id, assignee.id, labels[0])]  # type: ignore[index]
    await api.ok("{ viewer { id } }", {}, creator.token)  # their rate-limit reservation
    await admin_fetch(fresh_database_url, change, ids[which])
    given = {
        "projectId": proj["id"],
        "title": "t",
        "assigneeId": assignee.id,
        "labelIds": labels[:1],
    }
    sent.reset()
    answer = (await api.post(LEAN, {"input": given}, creator.token))["data"]["createTask"]
    assert answer["task"] is None
    assert [e["code"] for e in answer["userErrors"]] == [code]
    queries = sent.reset()
    assert _transaction_control(queries) == [], queries
    assert len(queries) == 2 and queries[0].startswith("WITH counter"), queries
    assert await written(asyncpg_dsn(fresh_database_url)) == (0, 0, 0, 0, 0)


async def test_checks_that_hold_again_after_a_refused_write_answer_a_conflict(
    served: tuple[Api, Sent], fresh_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write is refused (the project archived), and by the time the checks are read the
    project is unarchived: nothing was written, and the answer says the project changed."""
    api, _ = served
    owner, proj, _ = await _world(api)
    project_id = from_global_id(proj["id"])[1]
    await admin_fetch(
        fresh_database_url, "UPDATE projects SET archived_at = now() WHERE id = $1", project_id
    )
    original = TaskRepository.creation_checks

    async def unarchived_first(self: TaskRepository, *args: Any) -> Any:
        await admin_fetch(
            fresh_database_url, "UPDATE projects SET archived_at = NULL WHERE id = $1", project_id
        )
        return await original(self, *args)

    monkeypatch.setattr(TaskRepository, "creation_checks", unarchived_first)
    given = {"projectId": proj["id"], "title": "t"}
    answer = (await api.post(LEAN, {"input": given}, owner.token))["data"]["createTask"]
    assert answer["task"] is None
    assert [e["code"] for e in answer["userErrors"]] == ["CONFLICT"]
    assert await written(asyncpg_dsn(fresh_database_url)) == (0, 0, 0, 0, 0)


async def written(dsn: str) -> tuple[int, int, int, int, int]:
    """Tasks, their audit rows, their labels, the counted tasks and the projects' counters."""
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            """SELECT (SELECT count(*) FROM tasks), (SELECT count(*) FROM audit_events
                 WHERE action = 'task.create'), (SELECT count(*) FROM task_labels),
               (SELECT coalesce(sum(count), 0) FROM project_task_counts),
               (SELECT coalesce(sum(task_counter), 0) FROM projects)"""
        )
    finally:
        await conn.close()
    assert row is not None
    return tuple(int(v) for v in row)  # type: ignore[return-value]
