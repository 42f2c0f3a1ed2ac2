"""An outside review of graphql_api.pools.StatementPool (the fast path's connections) against a real
PostgreSQL: cancellations at every await point, backends ended by the server, a private cluster
stopped and started under readers, close() with reads under way, PgBouncer mode.

Every test that fails here documents a bug; the others guard what holds. Backends are told
apart by an application name of the test's own, or by the test's own database: nothing here
touches a connection it did not open."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import random
import shutil
import socket
import struct
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvloop
from sqlalchemy.engine import make_url

from db.urls import asyncpg_dsn
from graphql_api import pools
from graphql_api.database import Database
from graphql_api.failures import classify, is_unavailable
from graphql_api.pools import StatementPool, statement_pool_for
from tests.conftest import make_settings
from tests.gql import Api
from tests.servers import serving
from tests.test_live_updates import ws_client
from tests.test_pgbouncer import bouncer  # noqa: F401  (the module's PgBouncer fixture)
from tests.test_read_pool import admin_fetch, backends, eventually, sleeping

PID = "SELECT pg_backend_pid()"
SLEEP = "SELECT pg_backend_pid() FROM pg_sleep(60)"  # never finishes within a test
CANCEL_REQUEST_CODE = 80877102  # PostgreSQL's CancelRequest startup code


async def terminate(url: str, name: str) -> None:
    """Ends the backends of this test's own application name (cleanup)."""
    await admin_fetch(
        url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = $1 AND pid <> pg_backend_pid()",
        name,
    )


@asynccontextmanager
async def read_pool(
    url: str, size: int, **settings: Any
) -> AsyncIterator[tuple[StatementPool, str]]:
    name = f"test-attack-{uuid.uuid4().hex[:8]}"
    config = make_settings(database_url=url, read_pool_size=size, **settings)
    pool = statement_pool_for(url, config, name, pgbouncer=config.pgbouncer)
    try:
        yield pool, name
    finally:
        await pool.close()
        await terminate(url, name)


# -- 1. Over-opening: a cancelled read's connection still counts until it is gone --------------


class CancelHoldingProxy:
    """A TCP proxy in front of PostgreSQL that forwards sessions untouched but holds every
    CancelRequest until released: a cancellation that is slow to reach the server, as it is
    when the server is overloaded (the very moment requests time out), or across a congested
    network or a PgBouncer. The statement it was meant to stop runs on meanwhile."""

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        socket_dir = url.query.get("host")
        self.unix = (
            f"{socket_dir}/.s.PGSQL.{url.port or 5432}" if socket_dir and not url.host else None
        )
        self.host, self.port = url.host or "127.0.0.1", url.port or 5432
        self.url = url
        self.held = 0
        self.release = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None
        self.listen_port = 0

    async def _upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.unix is not None:
            return await asyncio.open_unix_connection(self.unix)
        return await asyncio.open_connection(self.host, self.port)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = await reader.readexactly(8)
            length, code = struct.unpack("!ii", head)
            if length == 16 and code == CANCEL_REQUEST_CODE:
                rest = await reader.readexactly(8)
                self.held += 1
                await self.release.wait()
                up_reader, up_writer = await self._upstream()
                up_writer.write(head + rest)
                await up_writer.drain()
                await up_reader.read()  # the server closes it once the cancel is taken
                up_writer.close()
                writer.close()
                return
            up_reader, up_writer = await self._upstream()
            up_writer.write(head)
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            writer.close()
        finally:
            self._tasks.discard(task)

    def dsn(self) -> str:
        user = self.url.username or "postgres"
        password = f":{self.url.password}" if self.url.password else ""
        return f"postgresql://{user}{password}@127.0.0.1:{self.listen_port}/{self.url.database}"

    async def __aenter__(self) -> CancelHoldingProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.listen_port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release.set()
        assert self._server is not None
        self._server.close()
        await asyncio.sleep(0.2)  # the held cancels go through
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def test_a_cancelled_read_keeps_its_slot_until_its_connection_is_gone(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """StatementPool counts a retired connection out (`_open -= 1`, pools.py:131) and gives its turn
    back (the `async with self._turns` ends, pools.py:92) the moment it decides to close it,
    while the close (which first waits for asyncpg's cancellation of the statement to reach the
    server, up to CLOSE_TIMEOUT_S) runs in the background. So each read cancelled by the
    request deadline lets the next read open one more connection while the old one, its
    statement still running, is not gone: under a storm of timeouts (a slow server, exactly
    when cancels land late) the pool holds far more than DB_READ_POOL_SIZE connections, up to
    PostgreSQL refusing everyone (53300, too many clients). asyncpg.Pool kept a connection's
    slot until its reset or close had finished.

    Here the cancel is held on its way (CancelHoldingProxy) and the close given all the time it
    needs: a pool of size 1 must not open a second connection meanwhile."""
    monkeypatch.setattr(pools, "CLOSE_TIMEOUT_S", 120.0)  # the close has not given up
    name = f"test-attack-{uuid.uuid4().hex[:8]}"
    async with CancelHoldingProxy(database_url) as proxy:
        options = {"ssl": False, "server_settings": {"application_name": name}}
        pool = StatementPool(proxy.dsn(), 1, 1800, options)
        try:
            read = asyncio.create_task(pool.fetchval(SLEEP))

            async def started() -> bool:
                return await sleeping(database_url, name) == 1

            await eventually(started, "the read never started")
            read.cancel()  # the request's deadline
            with pytest.raises(asyncio.CancelledError):
                await read

            async def cancel_sent() -> bool:
                return proxy.held == 1

            await eventually(cancel_sent, "asyncpg never sent its cancellation")
            following = asyncio.create_task(pool.fetchval("SELECT 1"))  # the next request

            async def answered_or_waiting() -> bool:
                return following.done() or pool.waiting() == 1

            await eventually(answered_or_waiting, "the next read neither ran nor waited")
            rows = await backends(database_url, name)
            assert len(rows) <= 1, f"a pool of size 1 has {len(rows)} connections: {rows}"
            proxy.release.set()
            assert await asyncio.wait_for(following, 60) == 1
        finally:
            proxy.release.set()
            await pool.close()
            await terminate(database_url, name)


# -- 2. PgBouncer mode: a read past its timeout runs a second time --------------------------


async def test_a_read_past_its_timeout_is_not_run_again(
    bouncer: Any,  # noqa: F811
    fresh_database_url: str,
) -> None:
    """Behind PgBouncer (DB_PGBOUNCER) the fast path's reads carry their own timeout
    (read_timeout_s): asyncpg cancels the statement and raises TimeoutError. But TimeoutError is
    a subclass of OSError, which database.RECONNECT lists (database.py:32-38), so
    Database.read_scalar (database.py:82) runs the statement a second time: the client waits
    twice DB_STATEMENT_TIMEOUT_MS, and the database does the heaviest statements twice, exactly
    when it is too slow already."""
    admin = await asyncpg.connect(asyncpg_dsn(fresh_database_url))
    try:
        await admin.execute("CREATE SEQUENCE attack_runs")
        settings = make_settings(
            database_url=bouncer.url(fresh_database_url), pgbouncer=True, statement_timeout_ms=300
        )
        db = Database(settings)
        await db.open()
        try:
            with pytest.raises(TimeoutError):
                await db.read_scalar("SELECT nextval('attack_runs'), pg_sleep(30)", ())
            runs = await admin.fetchval(
                "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM attack_runs"
            )
            assert runs == 1, f"the timed-out statement ran {runs} times"
        finally:
            await db.close()
    finally:
        await admin.close()


# -- Regression guards ------------------------------------------------------------------------


async def _storm(url: str, seed: int) -> None:
    """Reads of every kind (quick, refused, endless) cancelled at random moments: waiting for a
    turn, connecting, mid-statement. The books must stay right throughout, no statement may run
    on in PostgreSQL, and the pool must answer afterwards."""
    rng = random.Random(seed)
    size = 3
    async with read_pool(url, size, statement_timeout_ms=0) as (pool, name):
        tasks: list[asyncio.Task[Any]] = []
        bounds: list[tuple[int, int]] = []

        def note() -> None:
            bounds.append((pool.get_size(), pool.get_idle_size()))

        for round_ in range(12):
            for _ in range(8):
                kind = rng.choice(["quick", "refused", "endless"])
                sql = {
                    "quick": "SELECT 1 FROM pg_sleep(0.003)",
                    "refused": "SELECT 1 / 0",
                    "endless": SLEEP,
                }[kind]
                tasks.append(asyncio.create_task(pool.fetchval(sql)))
            if round_ % 4 == 3:  # now and then the server ends them all: connects to cancel
                await terminate(url, name)
            for _ in range(8):
                await asyncio.sleep(rng.random() * 0.01)
                note()
                rng.choice(tasks).cancel()
            for task in tasks:
                if not task.done() and rng.random() < 0.7:
                    task.cancel()
        # Whatever is left (endless reads that were never picked) is cancelled too.
        while pending := [t for t in tasks if not t.done()]:
            note()
            for task in pending:
                task.cancel()
            await asyncio.sleep(0.01)
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        for outcome in outcomes:
            assert (
                outcome == 1
                or isinstance(outcome, asyncio.CancelledError | asyncpg.DivisionByZeroError)
                or (isinstance(outcome, Exception) and is_unavailable(outcome))  # ended under it
            ), repr(outcome)
        assert all(0 <= idle <= open_ <= size for open_, idle in bounds), bounds
        assert pool.waiting() == 0

        async def settled() -> bool:
            return len(await backends(url, name)) == pool.get_size()

        await eventually(settled, "connections the pool no longer counts are still open")

        async def none_sleeping() -> bool:
            return await sleeping(url, name) == 0

        await eventually(none_sleeping, "a cancelled statement still runs in PostgreSQL")
        answers = await asyncio.gather(*(pool.fetchval("SELECT $1::int", n) for n in range(20)))
        assert answers == list(range(20))
        assert 1 <= pool.get_size() <= size
        assert pool.get_idle_size() == pool.get_size()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_cancellations_at_every_await_point_keep_the_books(database_url: str, loop: str) -> None:
    factory = uvloop.new_event_loop if loop == "uvloop" else asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.get_loop().set_exception_handler(lambda _loop, _context: None)  # asyncpg's noise
        runner.run(_storm(database_url, seed=7))


async def test_backends_ended_under_readers_fail_as_unavailable_and_recover(
    fresh_database_url: str,
) -> None:
    """pg_terminate_backend on every read connection (this test's database only), again and
    again, under concurrent readers: what reaches a client is classified UNAVAILABLE (503,
    Retry-After), never INTERNAL, and reads answer again at once afterwards."""
    db = Database(make_settings(database_url=fresh_database_url, read_pool_size=3))
    await db.open()
    assert db.read_pool is not None
    admin = await asyncpg.connect(asyncpg_dsn(fresh_database_url))
    failures: collections.Counter[str] = collections.Counter()
    unclassified: list[str] = []
    stop = False

    async def reader() -> None:
        while not stop:
            try:
                await db.read_scalar("SELECT 1 FROM pg_sleep(0.002)", ())
            except Exception as exc:
                failure = classify(exc)
                failures[failure.code if failure else "INTERNAL"] += 1
                if failure is None or failure.code != "UNAVAILABLE":
                    unclassified.append(repr(exc))

    readers = [asyncio.create_task(reader()) for _ in range(8)]
    try:
        rng = random.Random(3)
        for _ in range(30):
            await asyncio.sleep(rng.random() * 0.03)
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'graphql-api-read' AND datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
            assert 0 <= db.read_pool.get_size() <= 3
    finally:
        stop = True
        await asyncio.gather(*readers)
    try:
        assert not unclassified, unclassified
        for _ in range(10):
            assert await db.read_scalar("SELECT 2", ()) == 2
        assert 1 <= db.read_pool.get_size() <= 3
    finally:
        await admin.close()
        await db.close()


# A private cluster (initdb) that the test may stop and start as it likes.

BIN_CANDIDATES = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


class Cluster:
    def __init__(self) -> None:
        self.bin = BIN_CANDIDATES[0]
        self.dir = Path(tempfile.mkdtemp(prefix="gqlapi-attack-pg-"))
        self.dir.chmod(0o777)
        self.data = self.dir / "data"
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.dir / "log")
        self._run("pg_ctl", "-D", str(self.data), "-w", "-l", log, "-o", options, "start")

    def stop(self, mode: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-m", mode, "stop")

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    if not BIN_CANDIDATES or (shutil.which("runuser") is None and os.geteuid() == 0):
        pytest.skip("needs PostgreSQL's server binaries")
    made = Cluster()
    try:
        made.start()
        yield made
    finally:
        made.destroy()


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_postgresql_restarted_under_readers(cluster: Cluster, mode: str) -> None:
    """The whole server stopped (a clean shutdown, or a crash: `-m immediate`) and started again
    while reads run: every failure a client sees is UNAVAILABLE, the pool never counts more
    than its size, and reads answer again once the server is back."""
    db = Database(make_settings(database_url=cluster.url, read_pool_size=4))
    await db.open()
    assert db.read_pool is not None
    seen: collections.Counter[str] = collections.Counter()
    unclassified: list[str] = []
    sizes: set[int] = set()
    stop = False

    async def reader() -> None:
        while not stop:
            try:
                await db.read_scalar("SELECT 1 FROM pg_sleep(0.002)", ())
                seen["ok"] += 1
            except Exception as exc:
                failure = classify(exc)
                if failure is None or failure.code != "UNAVAILABLE":
                    unclassified.append(repr(exc))
                await asyncio.sleep(0.01)
            assert db.read_pool is not None
            sizes.add(db.read_pool.get_size())

    readers = [asyncio.create_task(reader()) for _ in range(8)]
    try:
        await asyncio.sleep(0.2)
        await asyncio.to_thread(cluster.stop, mode)
        await asyncio.sleep(0.3)
        await asyncio.to_thread(cluster.start)
        before = seen["ok"]

        async def answering() -> bool:
            return seen["ok"] > before + 20

        await eventually(answering, "reads did not recover after the restart")
    finally:
        stop = True
        await asyncio.gather(*readers, return_exceptions=True)
        await db.close()
    assert not unclassified, unclassified[:5]
    assert max(sizes) <= 4 and min(sizes) >= 0, sizes


async def test_close_with_reads_under_way_waiting_and_connecting(database_url: str) -> None:
    """close() with one read mid-statement, one opening its connection and others waiting for a
    turn: the one under way answers, none hangs, and no connection is left open afterwards."""
    async with read_pool(database_url, 2, statement_timeout_ms=0) as (pool, name):
        running = asyncio.create_task(pool.fetchval("SELECT 7 FROM pg_sleep(0.3)"))
        connecting = asyncio.create_task(pool.fetchval("SELECT 8"))
        waiting = [asyncio.create_task(pool.fetchval("SELECT 9")) for _ in range(3)]
        await asyncio.sleep(0)  # both have their turns; the others wait
        assert pool.waiting() == 3
        await pool.close()
        outcomes = await asyncio.wait_for(
            asyncio.gather(running, connecting, *waiting, return_exceptions=True), 30
        )
        assert outcomes[0] == 7
        for outcome in outcomes[1:]:
            assert outcome in (8, 9) or (
                isinstance(outcome, asyncpg.InterfaceError) and "closed" in str(outcome)
            ), repr(outcome)
        await pool.close()  # the connections given back after the first close

        async def none_left() -> bool:
            return not await backends(database_url, name)

        await eventually(none_left, "connections left open after close")
        assert pool.get_size() == 0


async def test_pgbouncer_mode_reads_cancelled_midway_stop_in_postgresql(
    bouncer: Any,  # noqa: F811
    fresh_database_url: str,
) -> None:
    """Through PgBouncer (statement_cache_size=0): reads cancelled mid-statement stop in
    PostgreSQL too (PgBouncer forwards asyncpg's cancel), and the pool's later reads, sharing
    PgBouncer's few server connections, answer with no prepared statement left in the way."""
    marker = f"attack-{uuid.uuid4().hex[:8]}"
    url = bouncer.url(fresh_database_url)
    async with read_pool(url, 3, pgbouncer=True, statement_timeout_ms=0) as (pool, _):
        sql = f"SELECT '{marker}' || pg_sleep(60)::text"
        reads = [asyncio.create_task(pool.fetchval(sql)) for _ in range(3)]

        async def active() -> int:
            rows = await admin_fetch(
                fresh_database_url,
                "SELECT count(*) AS n FROM pg_stat_activity WHERE state = 'active' "
                "AND query LIKE $1 AND pid <> pg_backend_pid()",
                f"%{marker}' ||%",
            )
            return int(rows[0]["n"])

        async def all_started() -> bool:
            return await active() == 3

        await eventually(all_started, "the reads never started")
        for read in reads:
            read.cancel()
        await asyncio.gather(*reads, return_exceptions=True)

        async def stopped() -> bool:
            return await active() == 0

        await eventually(stopped, "cancelled statements still run behind PgBouncer")
        answers = await asyncio.gather(*(pool.fetchval("SELECT $1::int", n) for n in range(30)))
        assert answers == list(range(30))
        assert pool.get_size() <= 3


# -- The live server, end to end --------------------------------------------------------------

WORKSPACES = "{ workspaces { totalCount } }"


async def test_the_live_server_answers_504_and_a_websocket_error_past_its_deadline(
    fresh_database_url: str,
) -> None:
    """A real `graphql-api serve` with REQUEST_TIMEOUT_SECONDS=1: a query whose statement waits
    on a lock (an administrator's LOCK TABLE) gets a 504 JSON with TIMEOUT and the request id
    over HTTP, on the fast path's first (resolver) and later (cached plan, StatementPool) runs, and
    an `error` message with TIMEOUT over a WebSocket; once the lock goes, the same queries
    answer and no statement is left waiting in PostgreSQL."""
    with serving(
        fresh_database_url, REQUEST_TIMEOUT_SECONDS="1", DB_STATEMENT_TIMEOUT_MS="60000"
    ) as host:
        async with httpx.AsyncClient(base_url=f"http://{host}", timeout=30) as http:
            api = Api(http)
            account = await api.register()
            headers = {"authorization": f"Bearer {account.token}"}
            admin = await asyncpg.connect(asyncpg_dsn(fresh_database_url))
            try:
                lock = admin.transaction()
                await lock.start()
                await admin.execute("LOCK TABLE workspaces IN ACCESS EXCLUSIVE MODE")
                for _ in range(3):  # the resolvers, then the cached plan on the read pool
                    response = await http.post(
                        "/graphql", json={"query": WORKSPACES}, headers=headers
                    )
                    assert response.status_code == 504, response.text
                    body = response.json()
                    assert [e["extensions"]["code"] for e in body["errors"]] == ["TIMEOUT"]
                    request_id = body["errors"][0]["extensions"]["requestId"]
                    assert request_id and response.headers["x-request-id"] == request_id
                async with ws_client(host, account.token) as ws:
                    await ws.send(
                        {"id": "1", "type": "subscribe", "payload": {"query": WORKSPACES}}
                    )
                    message = await ws.receive(timeout=30)
                    assert message["id"] == "1" and message["type"] == "error", message
                    extensions = message["payload"][0]["extensions"]
                    assert extensions["code"] == "TIMEOUT" and extensions["requestId"]
                await lock.rollback()

                async def no_waiters() -> bool:
                    rows = await admin.fetch(
                        "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND datname = current_database()"
                    )
                    return not rows

                await eventually(no_waiters, "timed-out statements still wait in PostgreSQL")
                for _ in range(3):
                    data = await api.ok(WORKSPACES, None, account.token)
                    assert data["workspaces"]["totalCount"] == 0
            finally:
                await admin.close()
