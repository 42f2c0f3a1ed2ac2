"""createTask alone in its operation, with a payload at hand, runs without a transaction: the
checks, then the one statement that numbers and writes the task, each committing on its own
(no BEGIN, SAVEPOINT or COMMIT), so the project's counter row is locked for that statement only.
Seen here in what the server's pooled connections send PostgreSQL (asyncpg's query logger),
through the app with its own pool, as users run it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import event

from db.urls import asyncpg_dsn
from graphql_api.app import create_app
from tests.conftest import make_settings
from tests.gql import Account, Api, label, project

LEAN = "mutation($input: CreateTaskInput!) { createTask(input: $input) { task { id identifier number } userErrors { code } } }"
RICH = "mutation($input: CreateTaskInput!) { createTask(input: $input) { task { id assignee { id } } userErrors { code } } }"
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


@pytest.fixture
async def served(fresh_database_url: str) -> AsyncIterator[tuple[Api, Sent]]:
    app = create_app(make_settings(database_url=fresh_database_url, fast_path=True))
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

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield Api(http), sent


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
    assert len(queries) == 2, queries  # the checks, the write


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
