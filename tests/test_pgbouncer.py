"""Behind PgBouncer in transaction mode (DB_PGBOUNCER=on): Debian's pgbouncer, started by the
test, in front of the test PostgreSQL; a real server process whose DATABASE_URL is PgBouncer's
and whose DATABASE_DIRECT_URL (for LISTEN) is PostgreSQL's."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from bench.pgbouncer import Bouncer, pgbouncer, pgbouncer_binary
from db.urls import asyncpg_dsn
from graphql_api.database import Database
from tests import gql
from tests.conftest import make_settings
from tests.servers import serving
from tests.test_live_updates import EVENTS, create, http_api, synced, ws_client

BOARD = """query($s: String!) { workspace(slug: $s) { project(key: "PGB") {
  tasks(first: 20) { totalCount nodes { identifier title } } } } }"""


@pytest.fixture(scope="module")
def bouncer(pg_admin_url: str) -> Iterator[Bouncer]:
    if pgbouncer_binary() is None:
        # .ci/run installs it; on CI its absence is a failure, elsewhere a skip.
        assert os.environ.get("CI") != "true", "Debian's pgbouncer is missing"
        pytest.skip("needs Debian's pgbouncer: apt-get install pgbouncer")
    with pgbouncer(pg_admin_url) as running:
        yield running


async def test_the_pgbouncer_in_the_way_is_real(bouncer: Bouncer, database_url: str) -> None:
    """What failed before DB_PGBOUNCER: a statement_timeout startup parameter is refused."""
    with pytest.raises(asyncpg.PostgresError, match="unsupported startup parameter"):
        await asyncpg.connect(
            asyncpg_dsn(bouncer.url(database_url)), server_settings={"statement_timeout": "5000"}
        )


async def test_the_database_behind_pgbouncer(bouncer: Bouncer, database_url: str) -> None:
    settings = make_settings(
        database_url=bouncer.url(database_url), pgbouncer=True, statement_timeout_ms=300
    )
    db = Database(settings)
    await db.open()
    try:
        # Fast-path reads: more at once than PgBouncer has server connections (3), so they
        # take turns on them; no prepared statement may be left behind for another to trip on.
        answers = await asyncio.gather(
            *(db.read_scalar("SELECT $1::int * 2", (n,)) for n in range(40))
        )
        assert answers == [n * 2 for n in range(40)]
        # Their timeout, without a connection default: the statement is cancelled...
        with pytest.raises(TimeoutError):
            await db.read_scalar("SELECT pg_sleep(30)", ())
        # ...and its connection answers the next one.
        assert await db.read_scalar("SELECT 'still here'", ()) == "still here"

        # Side transactions (rate limits, sign-in bookkeeping) get it with SET LOCAL.
        assert db.sessionmaker is not None
        async with db.sessionmaker() as session:
            shown = (await session.execute(text("SHOW statement_timeout"))).scalar()
            assert shown == "300ms"
        assert await db.readiness() is None
    finally:
        await db.close()


async def test_a_server_behind_pgbouncer_in_transaction_mode(
    bouncer: Bouncer, fresh_database_url: str
) -> None:
    env = {
        "DB_PGBOUNCER": "on",
        "DATABASE_DIRECT_URL": fresh_database_url,
        "RATE_LIMIT_POINTS": "80",
    }
    with serving(bouncer.url(fresh_database_url), **env) as host:
        api = http_api(host)
        owner = await api.register("bounced")
        ws = await api.workspace(owner, "Bounced")
        proj = await gql.project(api, owner, ws["id"], "PGB")

        # Mutations, several at once, sharing PgBouncer's three server connections.
        made = await asyncio.gather(*(create(api, owner, proj["id"], f"T{n}") for n in range(8)))
        assert sorted(t["title"] for t in made) == [f"T{n}" for n in range(8)]

        # The fast path: the first answer compiles the query, the repeats come from its plan.
        board = [await api.ok(BOARD, {"s": ws["slug"]}, owner.token) for _ in range(3)]
        tasks = board[0]["workspace"]["project"]["tasks"]
        assert tasks["totalCount"] == 8 and len(tasks["nodes"]) == 8
        assert board[1] == board[0] == board[2]
        many = await asyncio.gather(
            *(api.ok(BOARD, {"s": ws["slug"]}, owner.token) for _ in range(12))
        )
        assert all(answer == board[0] for answer in many)

        # A subscription: LISTEN on the direct connection, NOTIFY through PgBouncer.
        async with ws_client(host, owner.token) as client:
            op = await client.subscribe(EVENTS, {"w": ws["id"]})
            await synced(client, op, api, owner, proj["id"])
            task = await create(api, owner, proj["id"], "Heard through PgBouncer")
            event = (await client.receive())["payload"]["data"]["taskEvents"]
            assert (event["kind"], event["taskId"]) == ("CREATED", task["id"])

        # Rate limits: reservations are transactions of their own, through PgBouncer too.
        reader = await api.register("reader")
        statuses: list[int] = []
        async with httpx.AsyncClient(base_url=f"http://{host}") as http:
            for _ in range(100):
                response = await http.post(
                    "/graphql",
                    json={"query": "{ viewer { id } }"},
                    headers={"authorization": f"Bearer {reader.token}"},
                )
                statuses.append(response.status_code)
                if response.status_code == 429:
                    assert gql.error_codes(response.json()) == ["RATE_LIMITED"]
                    break
        assert statuses[-1] == 429 and set(statuses[:-1]) == {200}
        assert len(statuses) == 81  # the budget of 80 points, one per request, then refused
