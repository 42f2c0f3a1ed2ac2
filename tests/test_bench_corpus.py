"""The benchmark's corpus reads (Q4-Q7): the limit endpoint's one-statement twins answer as the
API does, on a small data set prepared as `make bench` prepares its own, and the audit rows the
harness adds to it are added once."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from bench import limit
from bench.audit_trail import HISTORY_EVENTS, WORKSPACE_EVENTS
from bench.run import PREFIX, ensure_data, operations
from graphql_api.app import create_app
from graphql_api.seed.bulk import BENCH_EMAIL, BENCH_PASSWORD, seed_bulk
from tests.conftest import make_settings
from tests.databases import dsn
from tests.gql import Api

CORPUS = ("Q4 history", "Q5 audit log", "Q6 nodes", "Q7 @include board")


async def test_limit_twins_answer_as_the_api(
    fresh_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 2 workspaces x 10 projects x 100 tasks: every task and project the corpus picks exists.
    await seed_bulk(fresh_database_url, 2000, 2, 10, PREFIX)
    data = await ensure_data(fresh_database_url, 2000)
    again = await ensure_data(fresh_database_url, 2000)
    assert again == data
    conn = await asyncpg.connect(dsn(fresh_database_url))
    try:
        added = await conn.fetchval("SELECT count(*) FROM audit_events")
    finally:
        await conn.close()
    assert added == HISTORY_EVENTS + WORKSPACE_EVENTS  # once, not per call
    ops = {name: operations(data)[name] for name in CORPUS}

    answers: dict[str, dict[str, Any]] = {}
    app = create_app(make_settings(database_url=fresh_database_url))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        api = Api(http)
        token = await api.sign_in(BENCH_EMAIL, BENCH_PASSWORD)
        for name, body in ops.items():
            answers[name] = await api.ok(body["query"], body["variables"], token)

    monkeypatch.setenv("LIMIT_DATABASE_URL", fresh_database_url)
    monkeypatch.setenv("LIMIT_ACTOR", data["actor"])
    limit._viewer.cache_clear()
    async with (
        limit.app.router.lifespan_context(limit.app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=limit.app), base_url="http://t"
        ) as http,
    ):
        for name, body in ops.items():
            r = await http.post("/graphql", json=body)
            assert r.json()["data"] == answers[name], name
    limit._viewer.cache_clear()

    history = answers["Q4 history"]["node"]["history"]
    assert history["totalCount"] == HISTORY_EVENTS and len(history["nodes"]) == 20
    assert history["pageInfo"]["hasNextPage"] and history["pageInfo"]["endCursor"]
    assert len(answers["Q5 audit log"]["workspace"]["auditEvents"]["nodes"]) == 20
    nodes = answers["Q6 nodes"]["nodes"]
    assert len(nodes) == 10 and all(nodes) and sum("key" in n for n in nodes) == 2
    board = answers["Q7 @include board"]["node"]["tasks"]["nodes"]
    assert board and all("labels" not in t and "comments" in t for t in board)
