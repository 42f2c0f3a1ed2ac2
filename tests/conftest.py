"""Real PostgreSQL for every test: TEST_DATABASE_URL when given, else an embedded server.

The schema is built once by the Alembic migrations into a template database. Most tests run in
an outer transaction that is rolled back; tests that need real commits (concurrency, the CLI)
get a fresh copy of the template.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from bench.operations import own_statement
from db.embedded import EmbeddedPostgres, admin_url
from db.engine import TimedSession, create_engine
from db.migrations import upgrade
from db.session import DbSession
from db.urls import normalise_database_url
from graphql_api.app import create_app
from graphql_api.database import Database
from graphql_api.settings import Settings
from tests.databases import create_database, drop_database, new_name
from tests.gql import Api


@contextmanager
def pg_data_dir() -> Iterator[Path]:
    """A folder for an embedded PostgreSQL of a test's own. Not under pytest's tmp_path: pytest
    makes that tree private to root at every session start, and the embedded server runs as
    another user, so a concurrent pytest run would lock it out."""
    parent = Path(tempfile.mkdtemp(prefix="gqlapi-test-pg-"))
    try:
        yield parent / "pgdata"
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def embedded_data_dir() -> Iterator[Path]:
    with pg_data_dir() as path:
        yield path


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    given = os.environ.get("TEST_DATABASE_URL", "").strip()
    if given:
        yield admin_url(normalise_database_url(given))
        return
    with pg_data_dir() as path:
        embedded = EmbeddedPostgres(path)
        url = embedded.start("postgres")
        yield url
        embedded.stop()


@pytest_asyncio.fixture(scope="session")
async def template_db(pg_admin_url: str) -> AsyncIterator[str]:
    """A database migrated to head, used only as a template (nothing stays connected to it)."""
    name = new_name("template")
    url = await create_database(pg_admin_url, name)
    await upgrade(url)
    yield name
    await drop_database(pg_admin_url, name)


@pytest_asyncio.fixture(scope="session")
async def database_url(pg_admin_url: str, template_db: str) -> AsyncIterator[str]:
    name = new_name("main")
    url = await create_database(pg_admin_url, name, template=template_db)
    yield url
    await drop_database(pg_admin_url, name)


@asynccontextmanager
async def fresh_database(pg_admin_url: str, template_db: str, kind: str) -> AsyncIterator[str]:
    """A migrated database of its own (a copy of the template), dropped afterwards."""
    name = new_name(kind)
    url = await create_database(pg_admin_url, name, template=template_db)
    try:
        yield url
    finally:
        await drop_database(pg_admin_url, name)


@pytest_asyncio.fixture
async def fresh_database_url(pg_admin_url: str, template_db: str) -> AsyncIterator[str]:
    """A database of this test's own, migrated, for tests whose writes must really commit."""
    async with fresh_database(pg_admin_url, template_db, "fresh") as url:
        yield url


@pytest_asyncio.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=5, max_overflow=5)
    yield engine
    await engine.dispose()


@pytest_asyncio.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """The test's outer transaction; everything done through it is rolled back afterwards."""
    async with engine.connect() as conn:
        trans = await conn.begin()
        try:
            yield conn
        finally:
            await trans.rollback()


def bound_sessionmaker(conn: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(
        bind=conn,
        expire_on_commit=False,
        autoflush=False,
        join_transaction_mode="create_savepoint",
        sync_session_class=TimedSession,  # as create_sessionmaker's
    )


@pytest_asyncio.fixture
async def session(connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    async with bound_sessionmaker(connection)() as session:
        yield session


@pytest.fixture
def db(session: AsyncSession) -> DbSession:
    return DbSession(session)


@dataclass
class SqlCounter:
    statements: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.statements)

    def reset(self) -> None:
        self.statements.clear()


@pytest.fixture
def sql_counter(engine: AsyncEngine) -> Iterator[SqlCounter]:
    counter = SqlCounter()

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if own_statement(statement):  # as the benchmark counts them
            counter.statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    yield counter
    event.remove(engine.sync_engine, "before_cursor_execute", before)


def make_settings(**overrides: Any) -> Settings:
    return Settings(**{"database_url": "postgresql+asyncpg://unused/unused", **overrides})


def joined_app(connection: AsyncConnection, **settings: Any) -> Starlette:
    """The app, its sessions joined to the test's rolled-back transaction."""
    config = make_settings(**settings)
    database = Database(config)
    database.engine = connection.engine
    database.sessionmaker = bound_sessionmaker(connection)

    async def read_scalar(sql: str, params: tuple[Any, ...]) -> Any:
        # Inside the test's transaction, like every other statement; in a SAVEPOINT, as a
        # statement that fails (a compiled role check refusing) leaves the transaction usable,
        # as it does on the server's own read connection.
        async with connection.begin_nested():
            return (await connection.exec_driver_sql(sql, params)).scalar_one()

    database.read_scalar = read_scalar  # type: ignore[method-assign]
    return create_app(config, database=database)


@asynccontextmanager
async def joined_client(
    connection: AsyncConnection, *, address: str = "127.0.0.1", **settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """The real ASGI app, its sessions joined to the test's rolled-back transaction. Requests
    come from the client `address`."""
    transport = httpx.ASGITransport(app=joined_app(connection, **settings), client=(address, 123))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@pytest_asyncio.fixture
async def client(connection: AsyncConnection) -> AsyncIterator[httpx.AsyncClient]:
    async with joined_client(connection) as http:
        yield http


@pytest_asyncio.fixture
async def resolver_api(connection: AsyncConnection) -> AsyncIterator[Api]:
    """The same app and data with the fast path off: every field through its resolver."""
    async with joined_client(connection, fast_path=False) as http:
        yield Api(http)


ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def api(client: httpx.AsyncClient) -> Api:
    return Api(client)


@asynccontextmanager
async def live_client(database_url: str, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The app on a database of its own with its own pools: writes really commit, and side
    transactions (login throttling, token revocation, rate limits) are separate connections."""
    app = create_app(make_settings(database_url=database_url, **settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


@pytest_asyncio.fixture
async def live_app(fresh_database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with live_client(fresh_database_url) as http:
        yield http


@pytest.fixture
def live_api(live_app: httpx.AsyncClient) -> Api:
    return Api(live_app)


def asgi_scope(kind: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """The scope of an "http" POST or a "websocket" to /graphql, for a test that drives the app
    straight over ASGI (a disconnect at a chosen moment, a WebSocket without a server)."""
    return {
        "type": kind,
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        **({"method": "POST"} if kind == "http" else {"subprotocols": ["graphql-transport-ws"]}),
        "scheme": "http" if kind == "http" else "ws",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"t"), *headers],
        "client": ("127.0.0.1", 1234),
        "server": ("t", 80),
    }


class AsgiWebSocket:
    """A graphql-transport-ws client of the app straight over ASGI (asgi_websocket)."""

    def __init__(self, to_app: asyncio.Queue[Any], from_app: asyncio.Queue[Any]) -> None:
        self.to_app, self.from_app = to_app, from_app

    async def send(self, message: dict[str, Any]) -> None:
        await self.to_app.put({"type": "websocket.receive", "text": orjson.dumps(message).decode()})

    async def receive(self) -> dict[str, Any]:
        """The next message other than a ping."""
        while True:
            event = await asyncio.wait_for(self.from_app.get(), 10)
            assert event["type"] == "websocket.send", event
            message: dict[str, Any] = orjson.loads(event.get("text") or event["bytes"])
            if message["type"] != "ping":
                return message

    async def init(self, token: str) -> None:
        await self.send(
            {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
        )
        assert (await self.receive())["type"] == "connection_ack"


@asynccontextmanager
async def asgi_websocket(app: Any) -> AsyncIterator[AsgiWebSocket]:
    """A WebSocket to the app's /graphql, accepted; disconnected at the end."""
    to_app: asyncio.Queue[Any] = asyncio.Queue()
    from_app: asyncio.Queue[Any] = asyncio.Queue()
    scope = asgi_scope("websocket", [(b"sec-websocket-protocol", b"graphql-transport-ws")])
    await to_app.put({"type": "websocket.connect"})
    served = asyncio.create_task(app(scope, to_app.get, from_app.put))
    try:
        accepted = await asyncio.wait_for(from_app.get(), 10)
        assert accepted["type"] == "websocket.accept", accepted
        yield AsgiWebSocket(to_app, from_app)
        await to_app.put({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(served, 10)
    finally:
        served.cancel()


def pause_once(
    monkeypatch: pytest.MonkeyPatch, owner: Any, name: str
) -> tuple[asyncio.Event, asyncio.Event]:
    """Make the coroutine function `owner.name` stop once, after its first call has run, until
    the test sets `release`: (reached, release). For putting a request at a chosen point while
    another one runs."""
    reached, release = asyncio.Event(), asyncio.Event()
    real = getattr(owner, name)

    async def paused(*args: Any, **kwargs: Any) -> Any:
        result = await real(*args, **kwargs)
        if not reached.is_set():
            reached.set()
            await release.wait()
        return result

    monkeypatch.setattr(owner, name, paused)
    return reached, release
