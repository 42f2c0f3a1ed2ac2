"""Production mode, rate limits by cost across processes, and timeouts."""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from starlette.applications import Starlette

from db.engine import create_engine, create_sessionmaker
from db.repositories import TaskRepository
from db.repositories.workspaces import WorkspaceRepository
from graphql_api.app import create_app
from graphql_api.http_front import GraphQLFront, request_id_for
from graphql_api.limits.rate import RateLimiter
from tests.conftest import asgi_websocket, joined_app, joined_client, live_client, make_settings
from tests.databases import dsn
from tests.gql import Api, error_codes, project
from tests.test_live_updates import EVENTS

STRONG = "s" * 40


@pytest_asyncio.fixture
async def prod_api(connection: AsyncConnection) -> AsyncIterator[Api]:
    async with joined_client(connection, environment="production", secret_key=STRONG) as http:
        yield Api(http)


@pytest_asyncio.fixture
async def dev_api(connection: AsyncConnection) -> AsyncIterator[Api]:
    async with joined_client(connection, environment="development") as http:
        yield Api(http)


INTROSPECTION = "{ __schema { queryType { name } } }"
# A mutation that looks its slug up (WorkspaceRepository.get_by_slug), which tests break.
CREATE = 'mutation { createWorkspace(input: {name: "x"}) { workspace { id } } }'


async def test_production_turns_off_introspection_graphiql_and_suggestions(
    prod_api: Api, dev_api: Api
) -> None:
    account = await prod_api.register()
    developer = await dev_api.register()
    refused = await prod_api.post(INTROSPECTION, None, account.token)
    assert refused["data"] is None and set(error_codes(refused)) == {"BAD_REQUEST"}
    assert (await dev_api.ok(INTROSPECTION, None, developer.token))["__schema"]["queryType"][
        "name"
    ] == "Query"
    page = await prod_api.http.get("/graphql", headers={"accept": "text/html"})
    assert "graphiql" not in page.text.lower()
    typo = "{ viewer { displayNam } }"
    prod_message = (await prod_api.post(typo, None, account.token))["errors"][0]["message"]
    dev_message = (await dev_api.post(typo, None, developer.token))["errors"][0]["message"]
    assert "Did you mean" in dev_message and "Did you mean" not in prod_message


TASKS = 'workspace(slug: "x") { project(key: "K") { tasks(%s) { totalCount } } }'
# Each kind of message that can name what the schema holds, with the typo it corrects.
SUGGESTING: dict[str, tuple[str, dict[str, Any], str]] = {
    "field": ("{ viewer { displayNam } }", {}, "displayNam"),
    "argument": ('{ workspace(slug: "x", slg: "y") { id } }', {}, "slg"),
    "enum literal": ("{ " + TASKS % "orderBy: {field: PRIORITE}" + " }", {}, "PRIORITE"),
    "enum variable": (
        "query($f: TaskOrderField!) { " + TASKS % "orderBy: {field: $f}" + " }",
        {"f": "PRIORITE"},
        "PRIORITE",
    ),
    "type in a fragment condition": ('{ node(id: "x") { ... on Tas { id } } }', {}, "Tas"),
    "input field": ("{ " + TASKS % "filter: {statu: [TODO]}" + " }", {}, "statu"),
    "input field variable": (
        "query($f: TaskFilter) { " + TASKS % "filter: $f" + " }",
        {"f": {"statu": ["TODO"]}},
        "statu",
    ),
}


@pytest.mark.parametrize("kind", SUGGESTING)
async def test_production_suggests_no_names(prod_api: Api, dev_api: Api, kind: str) -> None:
    query, variables, typo = SUGGESTING[kind]
    prod = await prod_api.post(query, variables)
    dev = await dev_api.post(query, variables)
    assert error_codes(prod) == error_codes(dev) == ["BAD_REQUEST"]
    assert "Did you mean" in dev["errors"][0]["message"]
    assert "Did you mean" not in prod["errors"][0]["message"]
    assert f"{typo}" in prod["errors"][0]["message"]  # it still says what is wrong


async def ws_operation_errors(
    app: Starlette, token: str, operations: list[tuple[str, dict[str, Any]]]
) -> list[list[dict[str, Any]]]:
    """The errors of each operation run over graphql-transport-ws, through the ASGI app."""
    errors = []
    async with asgi_websocket(app) as ws:
        await ws.init(token)
        for op_id, (query, variables) in enumerate(operations):
            payload = {"query": query, "variables": variables}
            await ws.send({"id": str(op_id), "type": "subscribe", "payload": payload})
            message = await ws.receive()
            assert message["id"] == str(op_id), message
            if message["type"] == "next":  # errors while executing (variables), then complete
                assert (await ws.receive())["type"] == "complete"
            errors.append(
                message["payload"] if message["type"] == "error" else message["payload"]["errors"]
            )
    return errors


async def test_production_suggests_no_names_over_a_websocket(
    connection: AsyncConnection,
) -> None:
    operations = [(query, variables) for query, variables, _ in SUGGESTING.values()]
    messages = {}
    for environment in ("production", "development"):
        app = joined_app(connection, environment=environment, secret_key=STRONG)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as http:
            account = await Api(http).register()
        errors = await ws_operation_errors(app, account.token, operations)
        assert [[e["extensions"]["code"] for e in each] for each in errors] == [
            ["BAD_REQUEST"]
        ] * len(operations)
        messages[environment] = [each[0]["message"] for each in errors]
    assert all("Did you mean" in m for m in messages["development"]), messages["development"]
    assert not any("Did you mean" in m for m in messages["production"]), messages["production"]


@pytest_asyncio.fixture
async def prod_with_introspection(connection: AsyncConnection) -> AsyncIterator[Api]:
    async with joined_client(
        connection, environment="production", secret_key=STRONG, introspection=True, graphiql=True
    ) as http:
        yield Api(http)


async def test_production_switches(prod_with_introspection: Api) -> None:
    account = await prod_with_introspection.register()
    assert (await prod_with_introspection.ok(INTROSPECTION, None, account.token))["__schema"]
    page = await prod_with_introspection.http.get("/graphql", headers={"accept": "text/html"})
    assert "graphiql" in page.text.lower()


async def test_a_masked_error_carries_a_request_id_found_in_the_log(
    prod_api: Api, dev_api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    account = await prod_api.register()

    async def broken(self: Any, slug: str) -> None:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(WorkspaceRepository, "get_by_slug", broken)
    with caplog.at_level(logging.ERROR, logger="graphql_api.errors"):
        body = await prod_api.post(CREATE, None, account.token)
    error = body["errors"][0]
    assert error["message"] == "Internal server error"
    assert error["extensions"]["code"] == "INTERNAL"
    request_id = error["extensions"]["requestId"]
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged and "the disk is on fire" in (logged[0].exc_text or str(logged[0].exc_info))
    assert "disk" not in str(body)
    # Development shows the detail to the developer.
    monkeypatch.undo()
    developer = await dev_api.register()
    monkeypatch.setattr(WorkspaceRepository, "get_by_slug", broken)
    dev = await dev_api.post(CREATE, None, developer.token)
    assert "the disk is on fire" in dev["errors"][0]["message"]


async def test_a_bug_outside_the_executor_is_still_the_json_envelope(
    prod_api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A POST to /graphql skips Starlette's error middleware (graphql_api/app.py, App): a bug in
    the front itself must still answer JSON with INTERNAL and the request id, and be logged."""
    account = await prod_api.register()

    async def broken(self: Any, payload: Any) -> Any:
        raise RuntimeError("the front is on fire")

    monkeypatch.setattr(GraphQLFront, "_resolve_post", broken)
    with caplog.at_level(logging.ERROR, logger="graphql_api.http_front"):
        response = await prod_api.http.post(
            "/graphql",
            json={"query": "{ viewer { id } }"},
            headers={"authorization": f"Bearer {account.token}"},
        )
    assert response.status_code == 500
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "INTERNAL"
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]
    assert "fire" not in response.text
    logged = [r for r in caplog.records if error["extensions"]["requestId"] in r.getMessage()]
    assert logged and "the front is on fire" in (logged[0].exc_text or str(logged[0].exc_info))


def test_request_ids_are_unique_across_requests_and_forked_workers() -> None:
    made = [request_id_for({"headers": []}) for _ in range(1000)]
    assert len(set(made)) == 1000
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in made)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # a worker forked from a parent that made ids already
        os.write(write, request_id_for({"headers": []}).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    assert re.fullmatch(r"[0-9a-f]{32}", child)
    assert child[:20] != made[0][:20]  # its own random part
    given = [(b"x-request-id", b"lb-7f3a:42")]
    assert request_id_for({"headers": given}) == "lb-7f3a:42"  # a proxy's id is kept


async def spend(api: Api, token: str | None, n: int) -> list[int]:
    statuses = []
    for _ in range(n):
        response = await api.http.post(
            "/graphql",
            json={"query": "{ viewer { id } }"},
            headers={"authorization": f"Bearer {token}"} if token else {},
        )
        statuses.append(response.status_code)
    return statuses


async def test_rate_limit_by_cost_at_its_boundary_across_processes_and_restarts(
    fresh_database_url: str,
) -> None:
    budget = {"rate_limit_points": 12}
    async with (
        live_client(fresh_database_url, **budget) as a_http,
        live_client(fresh_database_url, **budget) as b_http,
    ):
        a, b = Api(a_http), Api(b_http)
        # Registering costs the anonymous client address 1 point; the budget counts per user.
        account = await a.register()
        answered = 0
        last: Any = None
        for turn in range(20):
            api = (a, b)[turn % 2]
            last = await api.http.post(
                "/graphql",
                json={"query": "{ viewer { id } }"},
                headers={"authorization": f"Bearer {account.token}"},
            )
            if last.status_code == 200:
                answered += 1
                assert int(last.headers["x-ratelimit-limit"]) == 12
        # Never more than the budget, however the two processes split it (a process may hold a
        # few points it reserved but has not spent).
        assert 12 - 2 <= answered <= 12
        assert last.status_code == 429
        assert last.headers["x-ratelimit-remaining"] == "0" and int(last.headers["retry-after"]) > 0
        assert error_codes(last.json()) == ["RATE_LIMITED"]
    # A restarted process (nothing in memory) still finds the budget spent.
    async with live_client(fresh_database_url, **budget) as c_http:
        assert await spend(Api(c_http), account.token, 1) == [429]


class CountingLimiter(RateLimiter):
    reservations = 0

    async def _reserve(self, key: str, window: int, want: int) -> tuple[int, int]:
        self.reservations += 1
        return await super()._reserve(key, window, want)


async def test_charge_now_decides_only_from_points_at_hand(fresh_database_url: str) -> None:
    """The fast path's charge without a coroutine: None where charge must reserve first (a new
    client, points used up), else the same decision charge makes, spending as it does."""
    engine = create_engine(fresh_database_url)
    limiter = CountingLimiter(create_sessionmaker(engine), budget=120, window_s=3600)
    try:
        assert limiter.charge_now("c", 1) is None  # nothing reserved yet
        first = await limiter.charge("c", 1)  # reserves the first chunk (budget // 20 = 6)
        now = [limiter.charge_now("c", 1) for _ in range(5)]
        assert all(d is not None and d.allowed for d in now)
        assert [d.remaining for d in now if d] == list(
            range(first.remaining - 1, first.remaining - 6, -1)
        )
        assert limiter.charge_now("c", 1) is None and limiter.reservations == 1  # chunk spent
        assert (await limiter.charge("c", 1)).allowed and limiter.reservations == 2
        headers = now[0].raw_headers()  # type: ignore[union-attr]
        assert dict(headers) == {k.encode(): v.encode() for k, v in now[0].headers().items()}  # type: ignore[union-attr]
        assert [name for name, _ in headers] == [
            b"x-ratelimit-limit",
            b"x-ratelimit-remaining",
            b"x-ratelimit-reset",
        ]
    finally:
        await engine.dispose()


async def test_a_busy_client_reserves_rarely_and_never_holds_up_another(
    fresh_database_url: str,
) -> None:
    engine = create_engine(fresh_database_url)
    limiter = CountingLimiter(create_sessionmaker(engine), budget=1_000_000, window_s=3600)
    blocker = await asyncpg.connect(dsn(fresh_database_url))
    try:
        # Chunks double (100, 200, 400, 800): 1,000 one-point requests make 4 reservations.
        for _ in range(1000):
            assert (await limiter.charge("busy", 1)).allowed
        assert limiter.reservations == 4
        reserved = await blocker.fetchval("SELECT reserved FROM rate_limits WHERE key = 'busy'")
        assert reserved == 1500

        # A reservation that waits (another process holds the row) holds up only its client.
        async with blocker.transaction():
            await blocker.execute("SELECT 1 FROM rate_limits WHERE key = 'busy' FOR UPDATE")
            waiting = asyncio.create_task(limiter.charge("busy", 10_000))
            await asyncio.sleep(0.2)
            assert not waiting.done()
            other = await asyncio.wait_for(limiter.charge("other", 1), 5)
            assert other.allowed
        assert (await asyncio.wait_for(waiting, 5)).allowed
    finally:
        await blocker.close()
        await engine.dispose()


async def test_rate_limit_headers_count_down(live_api: Api) -> None:
    account = await live_api.register()
    responses = [
        await live_api.http.post(
            "/graphql",
            json={"query": "{ workspaces(first: 100) { totalCount } }"},
            headers={"authorization": f"Bearer {account.token}"},
        )
        for _ in range(3)
    ]
    remaining = [int(r.headers["x-ratelimit-remaining"]) for r in responses]
    assert remaining[0] - remaining[1] == remaining[1] - remaining[2] == 1  # 100 nodes = 1 point
    assert int(responses[0].headers["x-ratelimit-limit"]) == 5000


async def sleeping(conn: Any) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'"
        )
    )


async def test_a_slow_statement_is_cancelled_and_the_pool_stays_healthy(
    fresh_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def slow(self: Any, slug: str) -> None:
        await self.db.execute(text("SELECT pg_sleep(5)"))

    async with live_client(
        fresh_database_url, statement_timeout_ms=300, pool_size=1, max_overflow=0
    ) as http:
        api = Api(http)
        account = await api.register()
        monkeypatch.setattr(WorkspaceRepository, "get_by_slug", slow)
        body = await api.post(CREATE, None, account.token)
        assert error_codes(body) == ["TIMEOUT"]
        assert body["data"] is None
        monkeypatch.undo()
        # The only pooled connection is back and healthy: the next requests work.
        for _ in range(3):
            assert (await api.ok("{ workspaces { totalCount } }", None, account.token))[
                "workspaces"
            ]["totalCount"] == 0
        conn = await asyncpg.connect(dsn(fresh_database_url))
        try:
            assert await sleeping(conn) == 0
        finally:
            await conn.close()


async def test_the_request_deadline_cancels_the_work(
    fresh_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def slow(self: Any, slug: str) -> None:
        await self.db.execute(text("SELECT pg_sleep(5)"))

    async with live_client(fresh_database_url) as http:
        # Signing up hashes a password (argon2): not under the tight deadline of a busy machine.
        account = await Api(http).register()
    async with live_client(
        fresh_database_url, request_timeout_s=0.5, statement_timeout_ms=60_000
    ) as http:
        api = Api(http)
        monkeypatch.setattr(WorkspaceRepository, "get_by_slug", slow)
        response = await http.post(
            "/graphql", json={"query": CREATE}, headers={"authorization": f"Bearer {account.token}"}
        )
        assert response.status_code in (200, 504)
        assert error_codes(response.json()) == ["TIMEOUT"]
        monkeypatch.undo()
        conn = await asyncpg.connect(dsn(fresh_database_url))
        try:
            for _ in range(50):  # the cancellation reaches PostgreSQL within moments
                if await sleeping(conn) == 0:
                    break
                await asyncio.sleep(0.05)
            assert await sleeping(conn) == 0
        finally:
            await conn.close()
        assert (await api.ok("{ workspaces { totalCount } }", None, account.token))["workspaces"][
            "totalCount"
        ] == 0


# A write that commits just as the deadline passes: the response must say what happened.
CREATE_TASK = """mutation($p: ID!) { createTask(input: {projectId: $p, title: "late"}) {
  task { id identifier } userErrors { code } } }"""


@pytest.mark.parametrize("path", ["transaction", "autocommit"])
async def test_a_write_that_commits_is_answered_though_the_deadline_passes(
    fresh_database_url: str, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """The deadline cancels work before a write commits (it rolls back: TIMEOUT is the truth);
    once the COMMIT is sent (or the statement that commits on its own), the request finishes:
    a TIMEOUT then would tell the client a committed write failed. The moments after the write
    are made to outlast the deadline."""
    async with live_client(fresh_database_url) as http:
        api = Api(http)
        owner = await api.register()
        ws = await api.workspace(owner)
        p = await project(api, owner, ws["id"])
    # autocommit: createTask alone with its payload at hand, which needs the connection's
    # statement timeout to be the nearer limit (resolvers/mutation.py, _alone).
    settings = {
        "request_timeout_s": 1.0,
        "statement_timeout_ms": 500 if path == "autocommit" else 60_000,
    }
    if path == "transaction":
        commit = AsyncSession.commit

        async def slow_commit(self: AsyncSession) -> None:
            await commit(self)
            if self.info.get("statement_timeout"):  # the request's (not the rate limit's)
                await asyncio.sleep(1.5)

        monkeypatch.setattr(AsyncSession, "commit", slow_commit)
    else:
        create = TaskRepository.create

        async def slow_write(self: TaskRepository, *args: Any, **kwargs: Any) -> Any:
            made = await create(self, *args, **kwargs)
            assert self.db.statements is not None  # the path this case is about
            await asyncio.sleep(1.5)
            return made

        monkeypatch.setattr(TaskRepository, "create", slow_write)
    async with live_client(fresh_database_url, **settings) as http:
        response = await http.post(
            "/graphql",
            json={"query": CREATE_TASK, "variables": {"p": p["id"]}},
            headers={"authorization": f"Bearer {owner.token}"},
        )
    monkeypatch.undo()
    body = response.json()
    assert response.status_code == 200, body
    assert "errors" not in body, body
    created = body["data"]["createTask"]["task"]
    assert created["identifier"] == "WEB-1"
    async with live_client(fresh_database_url) as http:
        seen = await Api(http).ok(
            "query($id: ID!) { node(id: $id) { ... on Task { title } } }",
            {"id": created["id"]},
            owner.token,
        )
    assert seen == {"node": {"title": "late"}}


@pytest_asyncio.fixture
async def tiny_budget(connection: AsyncConnection) -> AsyncIterator[Api]:
    async with joined_client(connection, rate_limit_points=3) as http:
        yield Api(http)


async def test_a_client_over_its_budget_costs_no_more_database_work(
    tiny_budget: Api, connection: AsyncConnection
) -> None:
    from sqlalchemy import event

    account = await tiny_budget.register()
    reservations: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "rate_limits" in statement:
            reservations.append(statement)

    event.listen(connection.sync_connection, "before_cursor_execute", seen)
    try:
        # Three points: three queries, then refused (the first refusal asks PostgreSQL)...
        assert await spend(tiny_budget, account.token, 4) == [200, 200, 200, 429]
        reservations.clear()
        assert await spend(tiny_budget, account.token, 5) == [429] * 5
        assert reservations == []  # refused from memory, not from PostgreSQL
    finally:
        event.remove(connection.sync_connection, "before_cursor_execute", seen)


async def test_a_query_over_websocket_is_held_to_the_request_deadline(
    fresh_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over HTTP the deadline answers 504; over a WebSocket each query or mutation has its own,
    from its start: past it the operation is cancelled and its client gets an `error` message
    with TIMEOUT and the request id; the connection carries on. The wait here is outside
    PostgreSQL (whose statement timeout would end it anyway): nothing else would stop it."""
    async with live_client(fresh_database_url) as http:
        account = await Api(http).register()
        workspace = await Api(http).workspace(account)

    async def slow(self: Any, slug: str) -> None:
        await asyncio.sleep(30)

    app = create_app(
        make_settings(database_url=fresh_database_url, request_timeout_s=0.5, fast_path=False)
    )
    async with app.router.lifespan_context(app), asgi_websocket(app) as ws:
        await ws.init(account.token)
        monkeypatch.setattr(WorkspaceRepository, "get_by_slug", slow)
        await ws.send(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": '{ workspace(slug: "x") { id } }'},
            }
        )
        message = await ws.receive()
        assert message["id"] == "1" and message["type"] == "error", message
        assert [e["extensions"]["code"] for e in message["payload"]] == ["TIMEOUT"]
        assert message["payload"][0]["extensions"]["requestId"]
        monkeypatch.undo()
        await ws.send({"id": "2", "type": "subscribe", "payload": {"query": "{ viewer { id } }"}})
        message = await ws.receive()
        assert message["type"] == "next" and message["payload"]["data"]["viewer"]["id"], message
        assert await ws.receive() == {"id": "2", "type": "complete"}
        # A subscription is not cut by the deadline: it lives until its client ends it.
        await ws.send(
            {
                "id": "3",
                "type": "subscribe",
                "payload": {"query": EVENTS, "variables": {"w": workspace["id"]}},
            }
        )
        await ws.send({"id": "4", "type": "subscribe", "payload": {"query": "{ viewer { id } }"}})
        seen = [await ws.receive(), await ws.receive()]
        assert [m["id"] for m in seen] == ["4", "4"], seen  # the query's next and complete only
        await asyncio.sleep(0.8)  # past the deadline: still no message for the subscription
        await ws.send({"id": "3", "type": "complete"})
        await ws.send({"id": "5", "type": "subscribe", "payload": {"query": "{ viewer { id } }"}})
        assert (await ws.receive())["id"] == "5"
