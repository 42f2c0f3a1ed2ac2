"""Read replicas against a real streaming replica (tests/replication.py) and real server
processes: queries are served by the standby, a viewer reads its own writes even while the
standby's replay is paused, other viewers may read the standby's older state, and a stopped
standby costs the clients nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from db.migrations import upgrade
from tests.databases import dsn, with_database
from tests.gql import CREATE_TASK, Account, Api, project
from tests.replication import Replication, replayed, streaming_replica
from tests.servers import serving

DATABASE = "graphql_api"
# Generous bounds: what is tested here is routing, never the clock.
ENV = {"DB_REPLICA_MAX_LAG_SECONDS": "300", "DB_READ_YOUR_WRITES_SECONDS": "300"}

BOARD = """query Board($id: ID!) {
  node(id: $id) { ... on Project { tasks(first: 50) { nodes { title } } } }
}"""
# Every read compiles; an invalid argument anywhere (a page over 100, under the alias
# `invalid`) hands the whole operation to the resolvers, which report it and answer the rest.
BOARD_BY_RESOLVERS = """query BoardByResolvers($id: ID!) {
  node(id: $id) { ... on Project { tasks(first: 50) { nodes { title } } } }
  invalid: node(id: $id) { ... on Project { tasks(first: 101) { totalCount } } }
}"""


@pytest.fixture(scope="module")
def replication() -> Iterator[Replication]:
    with streaming_replica() as replication:
        yield replication


@pytest_asyncio.fixture
async def urls(replication: Replication) -> AsyncIterator[tuple[str, str]]:
    """A migrated database on the primary, and the same database on the standby."""
    conn = await asyncpg.connect(dsn(replication.primary.url))
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await conn.close()
    primary = with_database(replication.primary.url, DATABASE)
    await upgrade(primary)
    yield primary, with_database(replication.standby.url, DATABASE)


async def titles(http: httpx.AsyncClient, token: str, project_id: str, query: str) -> list[str]:
    variables: dict[str, Any] = {"id": project_id}
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    expected = [["invalid", "tasks"]] if query is BOARD_BY_RESOLVERS else []
    assert [e["path"] for e in body.get("errors", [])] == expected, body
    return [t["title"] for t in body["data"]["node"]["tasks"]["nodes"]]


async def create_task(http: httpx.AsyncClient, token: str, project_id: str, title: str) -> None:
    await Api(http).ok(CREATE_TASK, {"input": {"projectId": project_id, "title": title}}, token)


async def setup(
    http: httpx.AsyncClient, reader_http: httpx.AsyncClient
) -> tuple[Account, Account, str]:
    """A workspace with a project, its owner and a member who only reads (another client:
    cookies are per client)."""
    api = Api(http)
    owner = await api.register("owner")
    reader = await Api(reader_http).register("reader")
    ws = await api.workspace(owner)
    await api.add(owner, ws["id"], reader, "MEMBER")
    project_id = (await project(api, owner, ws["id"]))["id"]
    await create_task(http, owner.token, project_id, "old")
    return owner, reader, project_id


async def standby_activity(standby_url: str) -> dict[str, list[str]]:
    """The server's connections to the standby: application name -> their last statements."""
    conn = await asyncpg.connect(dsn(standby_url))
    try:
        rows = await conn.fetch(
            "SELECT application_name, query FROM pg_stat_activity "
            "WHERE application_name LIKE 'graphql-api%'"
        )
    finally:
        await conn.close()
    seen: dict[str, list[str]] = {}
    for row in rows:
        seen.setdefault(row["application_name"], []).append(row["query"])
    return seen


async def test_reads_go_to_the_replica_and_a_viewer_reads_its_own_writes(
    urls: tuple[str, str],
) -> None:
    primary_url, standby_url = urls
    env = {**ENV, "DATABASE_READ_URL": standby_url}
    with serving(primary_url, **env) as address, serving(primary_url, **env) as other:
        base = f"http://{address}"
        async with (
            httpx.AsyncClient(base_url=base) as owner_http,
            httpx.AsyncClient(base_url=base) as reader_http,
        ):
            owner, reader, project_id = await setup(owner_http, reader_http)
            await replayed(primary_url, standby_url)
            standby = await asyncpg.connect(dsn(standby_url))
            try:
                await standby.execute("SELECT pg_wal_replay_pause()")
                # Written on the primary; the standby does not replay it while paused.
                await create_task(owner_http, owner.token, project_id, "fresh")

                # The writer reads its write, on both paths (the compiled statement twice: the
                # executor's run, then the cached plan's), from this process's memory...
                for query in (BOARD, BOARD, BOARD_BY_RESOLVERS):
                    assert "fresh" in await titles(owner_http, owner.token, project_id, query)
                    owner_http.cookies.clear()  # so this is not the cookie's doing
                # ...and in another process, which never saw the write, with the cookie.
                async with httpx.AsyncClient(base_url=f"http://{other}") as elsewhere:
                    assert "fresh" not in await titles(
                        elsewhere, owner.token, project_id, BOARD_BY_RESOLVERS
                    )  # no cookie: the standby's older state, which the README owns up to
                    await create_task(elsewhere, owner.token, project_id, "fresh elsewhere")
                    got = await titles(elsewhere, owner.token, project_id, BOARD)
                    assert "fresh elsewhere" in got
                    async with httpx.AsyncClient(base_url=base, cookies=elsewhere.cookies) as back:
                        got = await titles(back, owner.token, project_id, BOARD)
                        assert "fresh elsewhere" in got  # the first process, by the cookie

                # Another viewer reads from the standby: its older state, on both paths.
                for query in (BOARD, BOARD, BOARD_BY_RESOLVERS):
                    assert await titles(reader_http, reader.token, project_id, query) == ["old"]
                activity = await standby_activity(standby_url)
                assert any("json_build_object" in q for q in activity["graphql-api-read-replica"])
                # The resolvers' session ends with its ROLLBACK: that it is there is enough,
                # with the older state above, which only the standby has.
                assert activity["graphql-api-replica"], activity

                await standby.execute("SELECT pg_wal_replay_resume()")
                await replayed(primary_url, standby_url)
                got = await titles(reader_http, reader.token, project_id, BOARD)
                assert sorted(got) == ["fresh", "fresh elsewhere", "old"]
            finally:
                # Never leave the shared standby paused for the next test, whatever failed.
                await standby.execute("SELECT pg_wal_replay_resume()")
                await standby.close()


async def test_a_stopped_replica_is_skipped_without_errors(
    replication: Replication, urls: tuple[str, str]
) -> None:
    primary_url, standby_url = urls
    log: list[str] = []
    with serving(primary_url, log=log, **ENV, DATABASE_READ_URL=standby_url) as address:
        base = f"http://{address}"
        async with (
            httpx.AsyncClient(base_url=base) as owner_http,
            httpx.AsyncClient(base_url=base) as reader_http,
        ):
            owner, reader, project_id = await setup(owner_http, reader_http)
            await replayed(primary_url, standby_url)
            for query in (BOARD, BOARD, BOARD_BY_RESOLVERS):
                assert await titles(reader_http, reader.token, project_id, query) == ["old"]
            activity = await standby_activity(standby_url)
            assert activity["graphql-api-read-replica"] and activity["graphql-api-replica"]

            replication.standby.stop()  # its connections, pooled in the server, die with it
            try:
                await create_task(owner_http, owner.token, project_id, "after")
                for _ in range(3):
                    for query in (BOARD, BOARD_BY_RESOLVERS):
                        got = await titles(reader_http, reader.token, project_id, query)
                        assert sorted(got) == ["after", "old"]  # the primary's
            finally:
                replication.standby.start()
    assert any("is down, reading from the primary" in line for line in log), "".join(log)
