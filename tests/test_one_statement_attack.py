"""An outsider's attacks on createTask's one-statement path (tests/test_one_statement.py): the
request runs without a transaction only when nothing it does can fail after its write, and what
goes wrong around that write (a deadline, a disconnect, a killed backend, a statement timeout,
a write the database refuses, a pooled connection used next by a transaction) leaves nothing
behind, takes no number and nothing for the next request. Each test fails when that path takes
a request it must not, or leaks."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import orjson
import pytest
from asyncpg.transaction import Transaction
from starlette.types import Message

from db.repositories import TaskRepository
from db.urls import asyncpg_dsn
from graphql_api.resolvers import tasks as task_resolvers
from graphql_api.schema.relay import from_global_id
from tests.conftest import asgi_scope
from tests.gql import error_codes
from tests.servers import serving
from tests.test_live_updates import http_api, setup, ws_client
from tests.test_one_statement import (
    LEAN,
    RICH,
    TWO,
    Sent,
    _transaction_control,
    _world,
    served_app,
    written,
)


def _control(sent: Sent) -> list[str]:
    return [q.split()[0].rstrip(";").upper() for q in _transaction_control(sent.reset())]


async def _project_locked(dsn: str, project_gid: str) -> tuple[asyncpg.Connection, Transaction]:
    """A connection holding the project's row lock (what the counter UPDATE waits for) until
    its transaction ends."""
    parsed = from_global_id(project_gid)
    assert parsed is not None
    conn = await asyncpg.connect(dsn)
    transaction = conn.transaction()
    await transaction.start()
    await conn.execute("SELECT 1 FROM projects WHERE id = $1 FOR UPDATE", parsed[1])
    return conn, transaction


async def _waiting_on_a_lock(dsn: str, count: int = 1) -> int:
    """The pid of a backend that waits on a row lock in this database (the create's write), once
    `count` of them wait."""
    conn = await asyncpg.connect(dsn)
    try:
        async with asyncio.timeout(10):
            while True:
                pids = await conn.fetchval(
                    "SELECT array_agg(pid ORDER BY backend_start) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
                if pids is not None and len(pids) >= count:
                    return int(pids[0])
                await asyncio.sleep(0.02)
    finally:
        await conn.close()


async def test_a_websocket_operation_has_a_deadline_of_its_own(fresh_database_url: str) -> None:
    """A WebSocket's context lives as long as its connection. Its operations must not inherit a
    deadline from the connection's start: past it, every statement of a mutation ran under a
    1 ms statement_timeout and a create that waited a moment for its project's counter failed
    with TIMEOUT."""
    env = {"REQUEST_TIMEOUT_SECONDS": "1", "DB_STATEMENT_TIMEOUT_MS": "800"}
    with serving(fresh_database_url, **env) as host:
        api = http_api(host)
        owner, _, proj = await setup(api)
        async with ws_client(host, owner.token) as client:
            await asyncio.sleep(1.3)  # the connection is older than a request may take
            # Without a transaction, and in one (its payload is read: SET LOCAL, if any, then).
            for query in (LEAN, RICH):
                dsn = asyncpg_dsn(fresh_database_url)
                locker, locked = await _project_locked(dsn, proj["id"])
                try:
                    op = await client.subscribe(
                        query, {"input": {"projectId": proj["id"], "title": "late"}}
                    )
                    await asyncio.sleep(0.3)  # the write waits for the counter meanwhile
                finally:
                    await locked.commit()
                    await locker.close()
                message = await client.receive()
                assert message["id"] == op and message["type"] == "next", message
                assert "errors" not in message["payload"], message
                assert message["payload"]["data"]["createTask"]["task"]["id"]
                assert await client.receive() == {"id": op, "type": "complete"}


# A field the payload's objects cannot answer, refused for a MEMBER with a top-level error: the
# operation must roll back, so the create must not have committed on its own before it.
AUDIT = "project { workspace { auditEvents(first: 1) { nodes { id } } } }"
HIDDEN = {
    "fragment spread": (
        "mutation($input: CreateTaskInput!) { createTask(input: $input) { task { ...F } } }"
        f" fragment F on Task {{ id identifier {AUDIT} }}"
    ),
    "inline fragments on Node": (
        "mutation($input: CreateTaskInput!) { createTask(input: $input) {"
        f" task {{ id ... on Node {{ ... on Task {{ {AUDIT} }} }} }} }} }}"
    ),
    "payload fragment, aliases": (
        "mutation($input: CreateTaskInput!) { createTask(input: $input) {"
        " __typename ... on CreateTaskPayload { t: task { n: number p: "
        + AUDIT
        + " } } userErrors { code } } }"
    ),
    "@include with a variable": (
        "mutation($input: CreateTaskInput!, $yes: Boolean!) { createTask(input: $input) {"
        f" task {{ id ... @include(if: $yes) {{ {AUDIT} }} }} }} }}"
    ),
    "fragment in a fragment": (
        "mutation($input: CreateTaskInput!) { createTask(input: $input) { ...P } }"
        " fragment P on CreateTaskPayload { task { ...T } }"
        f" fragment T on Task {{ __typename ... on Task {{ {AUDIT} }} }}"
    ),
}


@pytest.mark.parametrize("hidden", list(HIDDEN))
async def test_a_field_that_can_fail_keeps_the_create_in_a_transaction(
    fresh_database_url: str, hidden: str
) -> None:
    async with served_app(fresh_database_url) as (_, api, sent):
        owner, proj, _ = await _world(api)
        member = await api.register()
        workspaces = await api.ok("{ workspaces { nodes { id } } }", {}, owner.token)
        await api.add(owner, workspaces["workspaces"]["nodes"][0]["id"], member, "MEMBER")
        sent.reset()
        variables = {"input": {"projectId": proj["id"], "title": hidden}, "yes": True}
        if "$yes" not in HIDDEN[hidden]:
            del variables["yes"]
        body = await api.post(HIDDEN[hidden], variables, member.token)
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], body
        control = _control(sent)
        assert "BEGIN" in control and control[-1] == "ROLLBACK", control
    assert await written(asyncpg_dsn(fresh_database_url)) == (0, 0, 0, 0, 0)


async def test_a_pooled_connection_is_transactional_again_after_an_autocommit_create(
    fresh_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One connection in the pool: the create sets it to AUTOCOMMIT; the next operation on it,
    two fields of which the second fails, must be one transaction again: nothing of the first
    stays."""
    dsn = asyncpg_dsn(fresh_database_url)
    async with served_app(fresh_database_url, pool_size=1, max_overflow=0) as (app, api, sent):
        owner, proj, _ = await _world(api)
        sent.reset()
        await api.ok(LEAN, {"input": {"projectId": proj["id"], "title": "alone"}}, owner.token)
        assert _control(sent) == []
        before = await written(dsn)
        real = task_resolvers._title

        def failing(value: str) -> str:
            if value == "fails":
                raise RuntimeError("a bug in the second field")
            return real(value)

        monkeypatch.setattr(task_resolvers, "_title", failing)
        body = await api.post(
            TWO,
            {
                "a": {"projectId": proj["id"], "title": "first"},
                "b": {"projectId": proj["id"], "title": "fails"},
            },
            owner.token,
        )
        assert [e["extensions"]["code"] for e in body["errors"]] == ["INTERNAL"], body
        control = _control(sent)
        assert "BEGIN" in control and control[-1] == "ROLLBACK", control
        assert await written(dsn) == before == (1, 1, 0, 1, 1)
        # And the create after it takes the next number.
        made = await api.ok(LEAN, {"input": {"projectId": proj["id"], "title": "t"}}, owner.token)
        assert made["createTask"]["task"]["identifier"] == "ONE-2"
        assert app.state.database.engine.pool.checkedout() == 0


# What the connection's default (DB_STATEMENT_TIMEOUT_MS) gives a statement without a
# transaction, SET LOCAL gives it in one: behind PgBouncer (no connection default) and when the
# request's deadline is nearer than the limit.
TIMEOUTS = {
    "connection default": ({"statement_timeout_ms": 300}, None),
    "PgBouncer": ({"statement_timeout_ms": 300, "pgbouncer": True}, 300),
    "nearer deadline": ({"statement_timeout_ms": 5000, "request_timeout_s": 1.0}, 1000),
}


@pytest.mark.parametrize("case", list(TIMEOUTS))
async def test_the_write_runs_under_the_statement_timeout(
    fresh_database_url: str, case: str
) -> None:
    settings, set_local = TIMEOUTS[case]
    dsn = asyncpg_dsn(fresh_database_url)
    async with served_app(fresh_database_url) as (_, api, _sent):
        owner, proj, _ = await _world(api)
    async with served_app(fresh_database_url, **settings) as (_, api, sent):
        await api.ok("{ viewer { id } }", {}, owner.token)  # its rate-limit reservation
        locker, locked = await _project_locked(dsn, proj["id"])
        try:
            sent.reset()
            async with asyncio.timeout(3):  # the lock is held longer than any of the limits
                response = await api.http.post(
                    "/graphql",
                    json={
                        "query": LEAN,
                        "variables": {"input": {"projectId": proj["id"], "title": "t"}},
                    },
                    headers={"authorization": f"Bearer {owner.token}"},
                )
        finally:
            await locked.commit()
            await locker.close()
        codes = [e["extensions"]["code"] for e in response.json()["errors"]]
        assert codes == ["TIMEOUT"], response.text
        queries = sent.reset()
        timeouts = [q for q in queries if q.startswith("SET LOCAL statement_timeout")]
        if set_local is None:
            assert _transaction_control(queries) == [] and timeouts == [], queries
        else:
            assert "BEGIN;" in _transaction_control(queries), queries
            [timeout] = timeouts
            assert set_local - 150 <= int(timeout.split()[-1]) <= set_local, timeout
    assert await written(dsn) == (0, 0, 0, 0, 0)


async def _post_until_gone(app: Any, body: bytes, token: str, gone: asyncio.Event) -> list[Message]:
    """A POST to the app straight over ASGI, whose client disconnects once `gone` is set."""
    scope = asgi_scope(
        "http",
        [(b"content-type", b"application/json"), (b"authorization", f"Bearer {token}".encode())],
    )
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    messages: list[Message] = []

    async def send(message: Message) -> None:
        messages.append(message)

    await app(scope, receive, send)
    return messages


@pytest.mark.parametrize("cut", ["deadline", "disconnect", "killed"])
async def test_a_write_cut_short_leaves_nothing_and_takes_no_number(
    fresh_database_url: str, monkeypatch: pytest.MonkeyPatch, cut: str
) -> None:
    """The write waits for its project's counter (another transaction holds the row) when its
    request is cut short: past the request's deadline, by the client leaving, or by its backend
    being terminated. Without a transaction to roll back, the statement itself must be stopped:
    once the counter is free, nothing of it commits, and the next creates number on from 1 on
    connections that are fine (transactional again where they must be). The deadline does not
    cancel a write in flight (a cancellation can arrive after its commit: context.commit_begins);
    its statement timeout, which never outlasts a commit, stops it."""
    dsn = asyncpg_dsn(fresh_database_url)
    async with served_app(fresh_database_url) as (_, api, _sent):
        owner, proj, labels = await _world(api)
    settings: dict[str, Any] = {}
    if cut == "deadline":
        # Taken without a transaction (the deadline is 2.5 s away, the limit 1 s), the write
        # starts at 1.8 s: the deadline passes while it waits, its statement timeout stops it.
        settings = {"request_timeout_s": 2.5, "statement_timeout_ms": 1000}
        create = TaskRepository.create

        async def late_create(self: Any, *args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(1.8)
            return await create(self, *args, **kwargs)

        monkeypatch.setattr(TaskRepository, "create", late_create)
    variables = {"input": {"projectId": proj["id"], "title": "cut", "labelIds": labels}}
    body = orjson.dumps({"query": LEAN, "variables": variables})
    async with served_app(fresh_database_url, **settings) as (app, api, sent):
        await api.ok("{ viewer { id } }", {}, owner.token)  # its rate-limit reservation
        locker, locked = await _project_locked(dsn, proj["id"])
        try:
            sent.reset()
            gone = asyncio.Event()
            request = asyncio.create_task(_post_until_gone(app, body, owner.token, gone))
            pid = await _waiting_on_a_lock(dsn)
            if cut == "disconnect":
                gone.set()
            elif cut == "killed":
                await locker.execute("SELECT pg_terminate_backend($1)", pid)
            async with asyncio.timeout(10):
                messages = await request
            await asyncio.sleep(0.2)  # a cancel request that is late would be late by now
        finally:
            await locked.commit()
            await locker.close()
            monkeypatch.undo()
        queries = sent.reset()
        assert _transaction_control(queries) == [], queries  # the one-statement path it was
        assert any(q.startswith("WITH counter") for q in queries), queries
        status = {m["status"] for m in messages if m["type"] == "http.response.start"}
        assert status == {"deadline": {200}, "disconnect": set(), "killed": {503}}[cut], messages
        if cut == "deadline":
            answer = orjson.loads(b"".join(m.get("body", b"") for m in messages))
            assert error_codes(answer) == ["TIMEOUT"], answer
        await asyncio.sleep(0.3)
        assert await written(dsn) == (0, 0, 0, 0, 0)
        made = await api.ok(LEAN, {"input": {"projectId": proj["id"], "title": "a"}}, owner.token)
        assert made["createTask"]["task"]["number"] == 1
        two = await api.ok(
            TWO,
            {
                "a": {"projectId": proj["id"], "title": "b"},
                "b": {"projectId": proj["id"], "title": "c"},
            },
            owner.token,
        )
        assert (two["a"]["task"]["number"], two["b"]["task"]["number"]) == (2, 3)
        control = _control(sent)
        assert "BEGIN" in control and control[-1] == "COMMIT", control
        assert app.state.database.engine.pool.checkedout() == 0
    assert await written(dsn) == (3, 3, 0, 3, 3)


async def test_a_write_the_database_refuses_is_a_user_error_that_takes_no_number(
    fresh_database_url: str,
) -> None:
    """The checks pass; before the write gets its project's counter, one of its labels is gone
    for good (a row deleted, not soft-deleted). The write fails on its foreign key: a userError,
    and neither the task, its audit row and NOTIFY, nor its number is left behind."""
    dsn = asyncpg_dsn(fresh_database_url)
    async with served_app(fresh_database_url) as (_, api, sent):
        owner, proj, labels = await _world(api)
        parsed = from_global_id(labels[1])
        assert parsed is not None
        listener = await asyncpg.connect(dsn)
        heard: list[str] = []
        await listener.add_listener("task_events", lambda *args: heard.append(args[-1]))
        locker, locked = await _project_locked(dsn, proj["id"])
        try:
            sent.reset()
            variables = {"input": {"projectId": proj["id"], "title": "t", "labelIds": labels}}
            request = asyncio.create_task(api.post(LEAN, variables, owner.token))
            await _waiting_on_a_lock(dsn)
            remover = await asyncpg.connect(dsn)
            await remover.execute("DELETE FROM labels WHERE id = $1", parsed[1])
            await remover.close()
        finally:
            await locked.commit()
            await locker.close()
        body = await request
        assert _control(sent) == []
        assert body["data"]["createTask"] == {"task": None, "userErrors": [{"code": "NOT_FOUND"}]}
        assert "errors" not in body
        assert await written(dsn) == (0, 0, 0, 0, 0)
        made = await api.ok(
            LEAN,
            {"input": {"projectId": proj["id"], "title": "t", "labelIds": labels[:1]}},
            owner.token,
        )
        assert made["createTask"]["task"]["identifier"] == "ONE-1"
        await asyncio.sleep(0.2)
        await listener.close()
    # The create that was made, only, announced with its task.
    made_id = from_global_id(made["createTask"]["task"]["id"])
    assert made_id is not None
    assert [(n["kind"], n["task"]) for n in map(orjson.loads, heard)] == [
        ("CREATED", str(made_id[1]))
    ]
    assert await written(dsn) == (1, 1, 1, 1, 1)


TASK_AT_HAND = """fragment T on Task { __typename id number identifier title description status
  priority dueAt createdAt updatedAt deletedAt version ... on Node { nodeId: id } }"""
CREATE_AT_HAND = (
    "mutation($input: CreateTaskInput!) { createTask(input: $input) {"
    " task { ...T } userErrors { code } } } " + TASK_AT_HAND
)
READ_BACK = "query($id: ID!) { node(id: $id) { ...T } } " + TASK_AT_HAND


@pytest.mark.parametrize("fast_path", [True, False])
async def test_the_payload_at_hand_is_what_is_read_back(
    fresh_database_url: str, fast_path: bool
) -> None:
    """What the create answers from its objects, with no statement, is the task as stored:
    read back right after (read-your-writes), compiled and by the resolvers, it is the same."""
    async with served_app(fresh_database_url, fast_path=fast_path) as (_, api, sent):
        owner, proj, labels = await _world(api)
        sent.reset()
        given = {
            "projectId": proj["id"],
            "title": 'Ünïcode \\ "quoted" ✓',
            "description": "line\nbreak\ttab",
            "status": "IN_REVIEW",
            "priority": "URGENT",
            "dueAt": "2031-02-03T04:05:06.000789+05:30",
            "labelIds": labels,
        }
        made = (await api.ok(CREATE_AT_HAND, {"input": given}, owner.token))["createTask"]
        assert _control(sent) == []
        task = made["task"]
        assert task["dueAt"] == "2031-02-02T22:35:06.000789+00:00"
        read = await api.ok(READ_BACK, {"id": task["id"]}, owner.token)
        assert read["node"] == task
    async with served_app(fresh_database_url, fast_path=not fast_path) as (_, other, _sent):
        read = await other.ok(READ_BACK, {"id": task["id"]}, owner.token)
        assert read["node"] == task
