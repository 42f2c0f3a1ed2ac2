"""Idempotency-Key: a retried mutation answers with its first outcome and writes nothing twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from db.repositories.idempotency_keys import IdempotencyKeyRepository
from graphql_api import idempotency
from graphql_api.resolvers import labels as label_resolvers
from graphql_api.settings import Settings, SettingsError
from tests.conftest import joined_client, live_client, pause_once
from tests.databases import dsn
from tests.gql import CREATE_LABEL, CREATE_PROJECT, CREATE_TASK, Account, Api, error_codes, project


async def send(
    http: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any],
    token: str | None,
    key: str | bytes | None = None,
    **headers: str,
) -> httpx.Response:
    sent: dict[str, Any] = dict(headers)
    if token:
        sent["authorization"] = f"Bearer {token}"
    if key is not None:
        sent["idempotency-key"] = key
    return await http.post("/graphql", json={"query": query, "variables": variables}, headers=sent)


async def count(conn: AsyncConnection, sql: str, **params: Any) -> int:
    return int((await conn.execute(text(sql), params)).scalar_one())


async def tasks_titled(conn: AsyncConnection, title: str) -> tuple[int, int]:
    """(tasks, their creation audit events)."""
    tasks = await count(conn, "SELECT count(*) FROM tasks WHERE title = :t", t=title)
    events = await count(
        conn,
        "SELECT count(*) FROM audit_events a JOIN tasks t ON t.id = a.entity_id "
        "WHERE t.title = :t AND a.action = 'task.create'",
        t=title,
    )
    return tasks, events


async def a_project(api: Api) -> tuple[Account, str]:
    owner = await api.register()
    ws = await api.workspace(owner)
    return owner, (await project(api, owner, ws["id"]))["id"]


async def test_a_retry_gets_the_first_response_and_writes_once(
    client: httpx.AsyncClient, api: Api, connection: AsyncConnection
) -> None:
    owner, project_id = await a_project(api)
    variables = {"input": {"projectId": project_id, "title": "retried"}}

    first = await send(client, CREATE_TASK, variables, owner.token, key="k-1")
    assert first.status_code == 200
    assert first.json()["data"]["createTask"]["task"]["identifier"] == "WEB-1"
    assert "idempotent-replayed" not in first.headers
    retry = await send(client, CREATE_TASK, variables, owner.token, key="k-1")
    assert retry.status_code == 200
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.content == first.content  # byte for byte
    assert await tasks_titled(connection, "retried") == (1, 1)

    # Without a key, the same request is a new task.
    again = await send(client, CREATE_TASK, variables, owner.token)
    assert again.json()["data"]["createTask"]["task"]["identifier"] == "WEB-2"


async def test_the_same_key_for_another_request_is_refused(
    client: httpx.AsyncClient, api: Api, connection: AsyncConnection
) -> None:
    owner, project_id = await a_project(api)
    await send(
        client,
        CREATE_TASK,
        {"input": {"projectId": project_id, "title": "a"}},
        owner.token,
        key="k",
    )

    other = await send(
        client,
        CREATE_TASK,
        {"input": {"projectId": project_id, "title": "b"}},
        owner.token,
        key="k",
    )
    assert other.status_code == 422
    body = other.json()
    assert body["data"] is None
    assert error_codes(body) == ["IDEMPOTENCY_KEY_REUSED"]
    assert "idempotent-replayed" not in other.headers
    assert await tasks_titled(connection, "b") == (0, 0)
    # Another operation name is another request too.
    named = await send(
        client,
        CREATE_TASK.replace("mutation(", "mutation Named("),
        {"input": {"projectId": project_id, "title": "a"}},
        owner.token,
        key="k",
    )
    assert error_codes(named.json()) == ["IDEMPOTENCY_KEY_REUSED"]


async def test_an_outcome_with_user_errors_is_kept_too(
    client: httpx.AsyncClient, api: Api, connection: AsyncConnection
) -> None:
    owner = await api.register()
    ws = await api.workspace(owner)
    variables = {"input": {"workspaceId": ws["id"], "key": "lower", "name": "P"}}
    first = await send(client, CREATE_PROJECT, variables, owner.token, key="p")
    assert first.json()["data"]["createProject"]["userErrors"][0]["code"] == "INVALID_INPUT"
    retry = await send(client, CREATE_PROJECT, variables, owner.token, key="p")
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.content == first.content


async def test_a_rolled_back_mutation_keeps_no_key(
    client: httpx.AsyncClient,
    api: Api,
    connection: AsyncConnection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    owner = await api.register()
    ws = await api.workspace(owner)
    variables = {"input": {"workspaceId": ws["id"], "name": "bug", "color": "#FF0000"}}

    def explode(value: str) -> str:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(label_resolvers, "_color", explode)
    failed = await send(client, CREATE_LABEL, variables, owner.token, key="l")
    assert error_codes(failed.json()) == ["INTERNAL"]
    monkeypatch.undo()
    assert await count(connection, "SELECT count(*) FROM idempotency_keys") == 0

    retry = await send(client, CREATE_LABEL, variables, owner.token, key="l")
    assert "idempotent-replayed" not in retry.headers
    assert retry.json()["data"]["createLabel"]["label"]["name"] == "bug"
    assert await count(connection, "SELECT count(*) FROM labels WHERE name = 'bug'") == 1


async def test_an_expired_key_executes_anew_and_old_keys_are_purged(
    client: httpx.AsyncClient, api: Api, connection: AsyncConnection
) -> None:
    owner, project_id = await a_project(api)
    variables = {"input": {"projectId": project_id, "title": "expiring"}}
    await send(client, CREATE_TASK, variables, owner.token, key="e")
    await connection.execute(
        text("UPDATE idempotency_keys SET expires_at = now() - interval '1 second'")
    )
    retry = await send(client, CREATE_TASK, variables, owner.token, key="e")
    assert "idempotent-replayed" not in retry.headers
    assert retry.json()["data"]["createTask"]["task"]["identifier"] == "WEB-2"
    assert await tasks_titled(connection, "expiring") == (2, 2)
    # The key holds the new outcome now.
    replay = await send(client, CREATE_TASK, variables, owner.token, key="e")
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == retry.content

    # Each new key deletes a few expired ones (of anyone), never more.
    await connection.execute(
        text(
            "INSERT INTO idempotency_keys (user_id, key, fingerprint, expires_at) "
            "SELECT id, 'old-' || n, '\\x00', now() - interval '1 day' "
            "FROM users, generate_series(1, :n) AS n WHERE email = :email"
        ),
        {"n": idempotency.PURGE_BATCH + 2, "email": owner.email},
    )
    await send(client, CREATE_TASK, variables, owner.token, key="new")
    assert (
        await count(connection, "SELECT count(*) FROM idempotency_keys WHERE key LIKE 'old-%'") == 2
    )


async def test_keys_are_per_user(
    client: httpx.AsyncClient, api: Api, connection: AsyncConnection
) -> None:
    owner = await api.register()
    ws = await api.workspace(owner)
    member = await api.register()
    await api.add(owner, ws["id"], member, "MEMBER")
    project_id = (await project(api, owner, ws["id"]))["id"]
    variables = {"input": {"projectId": project_id, "title": "mine"}}

    theirs = await send(client, CREATE_TASK, variables, owner.token, key="shared")
    mine = await send(client, CREATE_TASK, variables, member.token, key="shared")
    assert "idempotent-replayed" not in mine.headers
    assert (
        mine.json()["data"]["createTask"]["task"]["id"]
        != theirs.json()["data"]["createTask"]["task"]["id"]
    )
    assert await tasks_titled(connection, "mine") == (2, 2)


@pytest.mark.parametrize(
    "key",
    ["", "x" * 256, b"caf\xc3\xa9", "tab\there"],
    ids=["empty", "too-long", "non-ascii", "control"],
)
async def test_a_malformed_key_is_a_bad_request(
    client: httpx.AsyncClient, api: Api, connection: AsyncConnection, key: str | bytes
) -> None:
    owner, project_id = await a_project(api)
    response = await send(
        client, CREATE_TASK, {"input": {"projectId": project_id, "title": "bad"}}, owner.token, key
    )
    assert response.status_code == 400
    assert error_codes(response.json()) == ["BAD_REQUEST"]
    assert await tasks_titled(connection, "bad") == (0, 0)


async def test_where_a_key_is_refused_or_ignored(
    client: httpx.AsyncClient, api: Api, connection: AsyncConnection
) -> None:
    owner, project_id = await a_project(api)
    variables = {"input": {"projectId": project_id, "title": "twice"}}
    # Two headers: which one would count?
    twice = await client.post(
        "/graphql",
        json={"query": CREATE_TASK, "variables": variables},
        headers=[
            ("authorization", f"Bearer {owner.token}"),
            ("idempotency-key", "a"),
            ("idempotency-key", "b"),
        ],
    )
    assert twice.status_code == 400
    assert error_codes(twice.json()) == ["BAD_REQUEST"]
    # Anonymous callers, and the account mutations, whose responses hold credentials.
    login = """mutation($input: LoginInput!) { login(input: $input) { accessToken userErrors { code } } }"""
    credentials = {"input": {"email": owner.email, "password": "wrong password"}}
    for token in (None, owner.token):
        refused = await send(client, login, credentials, token, key="login")
        assert refused.status_code == 400
        assert error_codes(refused.json()) == ["BAD_REQUEST"]
    # Through a fragment too.
    fragment = "mutation($input: LoginInput!) { ...L } fragment L on Mutation { login(input: $input) { accessToken } }"
    refused = await send(client, fragment, credentials, owner.token, key="login")
    assert error_codes(refused.json()) == ["BAD_REQUEST"]
    assert await count(connection, "SELECT count(*) FROM idempotency_keys") == 0
    # A query ignores the key: reading is safe to repeat.
    query = "{ viewer { email } }"
    for _ in range(2):
        read = await send(client, query, {}, owner.token, key="q")
        assert read.status_code == 200
        assert read.json()["data"] == {"viewer": {"email": owner.email}}
        assert "idempotent-replayed" not in read.headers


async def test_a_batch_refuses_a_key(connection: AsyncConnection) -> None:
    async with joined_client(connection, batching=True) as http:
        api = Api(http)
        owner, project_id = await a_project(api)
        one = {
            "query": CREATE_TASK,
            "variables": {"input": {"projectId": project_id, "title": "b"}},
        }
        response = await http.post(
            "/graphql",
            json=[one, one],
            headers={"authorization": f"Bearer {owner.token}", "idempotency-key": "batch"},
        )
        assert all(error_codes(r) == ["BAD_REQUEST"] for r in response.json())
        assert await tasks_titled(connection, "b") == (0, 0)


async def test_cors_lets_browsers_send_the_key_and_read_the_replay_header(
    connection: AsyncConnection,
) -> None:
    async with joined_client(connection, cors_origins=("https://app.example",)) as http:
        preflight = await http.options(
            "/graphql",
            headers={
                "origin": "https://app.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization, content-type, idempotency-key",
            },
        )
        assert preflight.status_code == 200
        assert "idempotency-key" in preflight.headers["access-control-allow-headers"].lower()
        response = await http.post(
            "/graphql",
            json={"query": "{ viewer { id } }"},
            headers={"origin": "https://app.example"},
        )
        assert "Idempotent-Replayed" in response.headers["access-control-expose-headers"]


async def test_two_concurrent_requests_with_one_key_execute_once(
    fresh_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second request waits on the first's key row, then answers with its outcome."""
    async with live_client(fresh_database_url) as http:
        api = Api(http)
        owner, project_id = await a_project(api)
        variables = {"input": {"projectId": project_id, "title": "concurrent"}}

        # Hold the first request inside its transaction, key claimed, until the second waits.
        holding, release = pause_once(monkeypatch, IdempotencyKeyRepository, "purge_expired")
        first = asyncio.create_task(send(http, CREATE_TASK, variables, owner.token, key="c"))
        await holding.wait()
        second = asyncio.create_task(send(http, CREATE_TASK, variables, owner.token, key="c"))
        async with probe_connection(fresh_database_url) as probe:
            for _ in range(10_000):  # a round trip each: until the second waits on the lock
                waiting = await probe.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE 'INSERT INTO idempotency_keys%'"
                )
                if waiting == 1 or second.done():
                    break
            assert waiting == 1, "the second request did not wait for the first"
            release.set()
            a, b = await asyncio.gather(first, second)
            assert "idempotent-replayed" not in a.headers
            assert b.headers["idempotent-replayed"] == "true"
            assert b.content == a.content
            tasks = await probe.fetchval("SELECT count(*) FROM tasks WHERE title = 'concurrent'")
            assert tasks == 1


@asynccontextmanager
async def probe_connection(url: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection of the test's own, beside the app's pool."""
    conn = await asyncpg.connect(dsn(url))
    try:
        yield conn
    finally:
        await conn.close()


def test_the_key_lifetime_is_a_setting() -> None:
    assert Settings().idempotency_key_ttl_s == 86_400
    env = {"IDEMPOTENCY_KEY_TTL_SECONDS": "60"}
    assert Settings.from_env(env).idempotency_key_ttl_s == 60
    with pytest.raises(SettingsError, match="IDEMPOTENCY_KEY_TTL_SECONDS"):
        Settings.from_env({"IDEMPOTENCY_KEY_TTL_SECONDS": "0"})
