"""An outsider's attacks on createTask's one-statement path (tests/test_one_statement.py): the
request runs without a transaction only when nothing it does can fail after its write, and what
goes wrong around that write (a deadline, a disconnect, a killed backend, a statement timeout,
a pooled connection used next by a transaction) leaves nothing behind and nothing for the next
request. Each test here fails when that path takes a request it must not, or leaks."""

from __future__ import annotations

import asyncio

import asyncpg

from db.urls import asyncpg_dsn
from tests.servers import serving
from tests.test_live_updates import http_api, setup, ws_client
from tests.test_one_statement import LEAN, RICH


async def _project_locked(dsn: str, project_gid: str) -> tuple[asyncpg.Connection, object]:
    """A connection holding the project's row lock (what the counter UPDATE waits for) until
    its transaction ends."""
    from graphql_api.schema.relay import from_global_id

    parsed = from_global_id(project_gid)
    assert parsed is not None
    conn = await asyncpg.connect(dsn)
    transaction = conn.transaction()
    await transaction.start()
    await conn.execute("SELECT 1 FROM projects WHERE id = $1 FOR UPDATE", parsed[1])
    return conn, transaction


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
                    await locked.commit()  # type: ignore[attr-defined]
                    await locker.close()
                message = await client.receive()
                assert message["id"] == op and message["type"] == "next", message
                assert "errors" not in message["payload"], message
                assert message["payload"]["data"]["createTask"]["task"]["id"]
                assert await client.receive() == {"id": op, "type": "complete"}
