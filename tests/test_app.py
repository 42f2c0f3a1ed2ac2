"""The HTTP surface of the foundation: health, readiness, GraphiQL, a first query."""

from __future__ import annotations

import httpx

from db.embedded import admin_url
from graphql_api.app import create_app
from graphql_api.database import Database
from tests.conftest import make_settings
from tests.databases import create_database, drop_database, new_name


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_when_migrated(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready"}


async def test_graphiql_in_development(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_viewer_is_null_when_anonymous(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json={"query": "{ viewer { id } }"})
    assert response.status_code == 200
    assert response.json() == {
        "data": {"viewer": None},
        "extensions": {"cost": {"requestedNodes": 0, "points": 1}},
    }


async def _readyz(database_url: str) -> httpx.Response:
    settings = make_settings(database_url=database_url, pool_timeout=2.0)
    app = create_app(settings)
    database: Database = app.state.database
    await database.open()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await http.get("/readyz")
    finally:
        await database.close()


async def test_readyz_503_when_the_database_is_down() -> None:
    # Nothing listens on port 1: the connection is refused.
    response = await _readyz("postgresql+asyncpg://postgres@127.0.0.1:1/nothing")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert "unreachable" in body["reason"]


async def test_readyz_503_when_the_schema_is_behind_head(pg_admin_url: str) -> None:
    name = new_name("empty")
    url = await create_database(admin_url(pg_admin_url), name)
    try:
        response = await _readyz(url)
    finally:
        await drop_database(pg_admin_url, name)
    assert response.status_code == 503
    assert "schema at nothing" in response.json()["reason"]
