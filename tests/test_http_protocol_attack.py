"""An outside review of graphql_api/http_protocol.py: inputs on which CoalescingHttpToolsProtocol
might part from uvicorn's own HttpToolsProtocol in a way a client notices. Each case drives both
protocols alike (bytes in through data_received, a stand-in transport recording writes, closes and
writes after the connection was lost) and compares what a client would see.

Four differences it found are fixed and pass here: a head written after the client left (uvloop
raised into the app's send), a head lost when the app failed or ended after its start, no head
for an `Expect: 100-continue` client when the app started before reading, and a head held until
a late first body part (SSE, long polling)."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import pytest
import uvloop
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from graphql_api.http_protocol import CoalescingHttpToolsProtocol
from tests.test_http_protocol import Transport, json_app, request, streamed_app

OURS, THEIRS = CoalescingHttpToolsProtocol, HttpToolsProtocol


class Recording(Transport):
    """Transport that also logs the order of writes and closes, flow control hooks, and (like
    uvloop's, once its handle is closed) refuses writes after the connection was lost."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, bytes]] = []
        self.lost = False
        self.late_writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        if self.lost:
            self.late_writes.append(bytes(data))
            raise RuntimeError("unable to perform operation on transport; the handler is closed")
        super().write(data)
        self.events.append(("write", bytes(data)))

    def close(self) -> None:
        if not self.closed:
            self.events.append(("close", b""))
        super().close()

    @property
    def data(self) -> bytes:
        return b"".join(self.writes)


class Conn:
    """One connection to a protocol instance, driven step by step."""

    def __init__(self, protocol_class: type[HttpToolsProtocol], app: Any, **config: Any) -> None:
        cfg = Config(app=app, http=protocol_class, lifespan="off", log_level="critical", **config)
        cfg.load()
        self.protocol = protocol_class(config=cfg, server_state=ServerState(), app_state={})
        self.transport = Recording()
        self.protocol.connection_made(self.transport)  # type: ignore[arg-type]

    def feed(self, data: bytes) -> None:
        self.protocol.data_received(data)

    def lose(self) -> None:
        """The peer went away: uvloop closes the handle, then calls connection_lost."""
        self.transport.closed = True
        self.protocol.connection_lost(None)
        self.transport.lost = True

    async def settle(self) -> None:
        """Run the loop until nothing more happens without outside input (bounded)."""
        for _ in range(50):
            await asyncio.sleep(0)

    async def finish(self) -> None:
        async with asyncio.timeout(5):
            while pending := [t for t in self.protocol.tasks if not t.done()]:
                await asyncio.wait(pending)


def same_to_client(ours: Conn, theirs: Conn) -> None:
    o, t = ours.transport, theirs.transport
    assert o.data == t.data, (o.writes, t.writes)
    assert o.closed == t.closed
    assert o.late_writes == t.late_writes == []
    # a close comes after the same bytes
    assert _bytes_before_close(o) == _bytes_before_close(t)


def _bytes_before_close(t: Recording) -> bytes:
    out = []
    for kind, data in t.events:
        if kind == "close":
            break
        out.append(data)
    return b"".join(out)


async def both(app: Any, *datas: bytes, **config: Any) -> tuple[Conn, Conn]:
    conns = []
    for cls in (OURS, THEIRS):
        conn = Conn(cls, app, **config)
        for data in datas:
            conn.feed(data)
            await conn.settle()
        await conn.finish()
        conns.append(conn)
    return conns[0], conns[1]


# --- apps -------------------------------------------------------------------------------------


def status_app(status: int, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


async def echo_app(scope: Any, receive: Any, send: Any) -> None:
    """Reads the whole body first, then answers it."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    length = str(len(body)).encode()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", length)]}
    )
    await send({"type": "http.response.body", "body": body})


async def start_then_read_app(scope: Any, receive: Any, send: Any) -> None:
    """Answers 200 (streamed) at once, then reads the body and sends it."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.body", "body": body})


async def start_then_raise_app(scope: Any, receive: Any, send: Any) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]}
    )
    raise ValueError("boom")


async def start_then_return_app(scope: Any, receive: Any, send: Any) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]}
    )


async def start_twice_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.start", "status": 200, "headers": []})


async def raise_before_start_app(scope: Any, receive: Any, send: Any) -> None:
    raise ValueError("boom")


async def no_response_app(scope: Any, receive: Any, send: Any) -> None:
    pass


async def bad_header_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x", b"a\nb")]})


async def too_long_app(scope: Any, receive: Any, send: Any) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"abc"})


async def too_short_app(scope: Any, receive: Any, send: Any) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]}
    )
    await send({"type": "http.response.body", "body": b"abc"})


async def empty_parts_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"", "more_body": True})
    await send({"type": "http.response.body", "body": b"x", "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def cl_in_parts_app(scope: Any, receive: Any, send: Any) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4")]}
    )
    await send({"type": "http.response.body", "body": b"", "more_body": True})
    await send({"type": "http.response.body", "body": b"ab", "more_body": True})
    await send({"type": "http.response.body", "body": b"cd"})


async def memoryview_app(scope: Any, receive: Any, send: Any) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"3")]}
    )
    await send({"type": "http.response.body", "body": memoryview(b"abc")})


async def str_body_app(scope: Any, receive: Any, send: Any) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"3")]}
    )
    await send({"type": "http.response.body", "body": "abc"})


def raw(head: str, body: bytes = b"") -> bytes:
    return head.replace("\n", "\r\n").encode() + body


GET = raw("GET / HTTP/1.1\nHost: t\n\n")
HEAD = raw("HEAD / HTTP/1.1\nHost: t\n\n")
POST = request()


# --- same bytes, same closes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app", "datas"),
    [
        pytest.param(json_app, [POST + POST + POST], id="three pipelined in one read"),
        pytest.param(json_app, [HEAD + POST + HEAD], id="pipelined HEAD, POST, HEAD"),
        pytest.param(json_app, [POST + request(close=True) + POST], id="pipelined, close 2nd"),
        pytest.param(json_app, [POST + POST[:10], POST[10:]], id="pipelined, 2nd split"),
        pytest.param(streamed_app, [POST + POST], id="pipelined streamed"),
        pytest.param(json_app, [request(close=True)], id="Connection: close"),
        pytest.param(json_app, [request("HEAD", close=True)], id="HEAD + Connection: close"),
        pytest.param(json_app, [raw("GET / HTTP/1.0\n\n")], id="HTTP/1.0"),
        pytest.param(
            json_app, [raw("GET / HTTP/1.0\nConnection: keep-alive\n\n")], id="HTTP/1.0 k-a"
        ),
        pytest.param(status_app(204, []), [GET], id="204 no length"),
        pytest.param(status_app(304, [(b"etag", b'"x"')]), [GET], id="304"),
        pytest.param(status_app(204, []), [GET + GET], id="204 pipelined"),
        pytest.param(status_app(200, []), [GET], id="chunked, empty body"),
        pytest.param(status_app(200, [], b"hello"), [GET], id="chunked, one part"),
        pytest.param(status_app(200, [], b"hello"), [HEAD], id="HEAD chunked"),
        pytest.param(
            status_app(200, [(b"transfer-encoding", b"chunked")], b"hi"), [GET], id="explicit TE"
        ),
        pytest.param(
            status_app(200, [(b"connection", b"close"), (b"content-length", b"2")], b"hi"),
            [GET + GET],
            id="app's Connection: close, pipelined",
        ),
        pytest.param(empty_parts_app, [GET], id="streamed, empty first part"),
        pytest.param(cl_in_parts_app, [GET], id="content-length in parts"),
        pytest.param(memoryview_app, [GET], id="memoryview body"),
        pytest.param(raise_before_start_app, [GET], id="500: raises before start"),
        pytest.param(raise_before_start_app, [GET + GET], id="500 pipelined"),
        pytest.param(no_response_app, [GET], id="500: returns without start"),
        pytest.param(bad_header_app, [GET], id="invalid header value"),
        pytest.param(too_long_app, [GET], id="body longer than content-length"),
        pytest.param(too_short_app, [GET], id="body shorter than content-length"),
        pytest.param(str_body_app, [GET], id="str body (TypeError)"),
        pytest.param(
            echo_app,
            [raw("POST / HTTP/1.1\nHost: t\nContent-Length: 3\n\nab"), b"c"],
            id="body in two reads",
        ),
        pytest.param(
            echo_app,
            [raw("POST / HTTP/1.1\nHost: t\nExpect: 100-continue\nContent-Length: 3\n\n"), b"abc"],
            id="100-continue, body read before start",
        ),
        pytest.param(
            echo_app,
            [raw("POST / HTTP/1.1\nHost: t\nExpect: 100-continue\nContent-Length: 3\n\nabc") * 2],
            id="100-continue pipelined with bodies",
        ),
        pytest.param(
            start_then_read_app,
            [raw("POST / HTTP/1.1\nHost: t\nContent-Length: 3\n\nabc")],
            id="start, then read a body already there",
        ),
        pytest.param(
            json_app,
            [raw("GET / HTTP/1.1\nHost: t\nTransfer-Encoding: chunked\n\n0\n\n")],
            id="chunked request",
        ),
        pytest.param(json_app, [b"GARBAGE\r\n\r\n"], id="400 from the parser"),
        pytest.param(json_app, [GET + b"GARBAGE\r\n\r\n"], id="GET then garbage"),
    ],
)
async def test_same_bytes_and_closes(app: Any, datas: list[bytes]) -> None:
    ours, theirs = await both(app, *datas)
    same_to_client(ours, theirs)


async def test_limit_concurrency_503() -> None:
    ours, theirs = await both(json_app, POST, limit_concurrency=1)
    same_to_client(ours, theirs)
    assert ours.transport.data.startswith(b"HTTP/1.1 503")


# --- flow control -----------------------------------------------------------------------------


def paused_app(gate: dict[str, asyncio.Event]) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        gate["started"].set()
        await gate["go"].wait()
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    return app


async def _paused_run(cls: type[HttpToolsProtocol], then: str) -> Conn:
    gate = {"started": asyncio.Event(), "go": asyncio.Event()}
    conn = Conn(cls, paused_app(gate))
    conn.feed(GET)
    await gate["started"].wait()
    conn.protocol.pause_writing()  # the transport's buffer is full
    gate["go"].set()
    await conn.settle()  # the body's send waits in drain()
    if then == "resume":
        conn.protocol.resume_writing()
    else:
        conn.lose()
    await conn.finish()
    return conn


async def test_pause_writing_between_start_and_body_then_resume() -> None:
    ours, theirs = await _paused_run(OURS, "resume"), await _paused_run(THEIRS, "resume")
    same_to_client(ours, theirs)


async def test_pause_writing_between_start_and_body_then_client_leaves() -> None:
    ours, theirs = await _paused_run(OURS, "lose"), await _paused_run(THEIRS, "lose")
    assert ours.transport.late_writes == theirs.transport.late_writes == []


# --- the client leaves between start and body -------------------------------------------------


def wait_then_body_app(seen: list[BaseException], gate: dict[str, asyncio.Event]) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        gate["started"].set()
        await gate["go"].wait()
        try:
            await send({"type": "http.response.body", "body": b"late"})
        except BaseException as exc:
            seen.append(exc)
            raise

    return app


async def _leaves(cls: type[HttpToolsProtocol]) -> tuple[Conn, list[BaseException]]:
    seen: list[BaseException] = []
    gate = {"started": asyncio.Event(), "go": asyncio.Event()}
    conn = Conn(cls, wait_then_body_app(seen, gate))
    conn.feed(GET)
    await gate["started"].wait()
    conn.lose()
    gate["go"].set()
    await conn.finish()
    return conn, seen


async def test_client_leaves_between_start_and_body() -> None:
    (ours, ours_seen), (theirs, theirs_seen) = await _leaves(OURS), await _leaves(THEIRS)
    assert theirs_seen == [] and theirs.transport.late_writes == []
    assert ours.transport.late_writes == [] and ours_seen == []


def test_client_leaves_between_start_and_body_live_uvloop() -> None:
    """The same on real sockets and uvloop (as `serve` runs): the app's body send after the client
    left returns quietly with ours as with uvicorn's (it raised RuntimeError into the app when
    ours wrote the held head to the closed transport)."""
    assert _live_leave(THEIRS) is None
    assert _live_leave(OURS) is None


def _live_leave(cls: type[HttpToolsProtocol]) -> BaseException | None:
    result: list[BaseException | None] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        disconnected = asyncio.Event()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            while (await receive())["type"] != "http.disconnect":
                pass
            await asyncio.sleep(0)  # uvloop closes the handle after connection_lost
            try:
                await send({"type": "http.response.body", "body": b"late"})
            except BaseException as exc:
                result.append(exc)
            else:
                result.append(None)
            disconnected.set()

        config = Config(app=app, http=cls, lifespan="off", log_level="critical")
        config.load()
        state = ServerState()
        server = await loop.create_server(
            lambda: cls(config=config, server_state=state, app_state={}), "127.0.0.1", 0
        )
        port = server.sockets[0].getsockname()[1]

        def client() -> None:
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")

        thread = threading.Thread(target=client)
        thread.start()
        async with asyncio.timeout(5):
            await disconnected.wait()
        thread.join()
        server.close()

    uvloop.run(main())
    return result[0]


# --- the head withheld while the app waits ----------------------------------------------------


async def test_100_continue_app_starts_before_reading() -> None:
    head = raw("POST / HTTP/1.1\nHost: t\nExpect: 100-continue\nContent-Length: 3\n\n")
    conns = []
    for cls in (OURS, THEIRS):
        conn = Conn(cls, start_then_read_app)
        conn.feed(head)
        await conn.settle()
        conns.append(conn)
    ours, theirs = conns
    assert theirs.transport.data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert ours.transport.data == theirs.transport.data
    for conn in conns:
        conn.feed(b"abc")
        await conn.finish()


async def test_100_continue_app_starts_before_reading_whole_exchange() -> None:
    """Once the body does come, the bytes are the same."""
    head = raw("POST / HTTP/1.1\nHost: t\nExpect: 100-continue\nContent-Length: 3\n\n")
    ours, theirs = await both(start_then_read_app, head, b"abc")
    same_to_client(ours, theirs)


async def test_head_visible_before_a_late_first_part() -> None:
    gate = {"started": asyncio.Event(), "go": asyncio.Event()}
    seen: list[BaseException] = []
    conns = []
    for cls in (OURS, THEIRS):
        gate = {"started": asyncio.Event(), "go": asyncio.Event()}
        conn = Conn(cls, wait_then_body_app(seen, gate))
        conn.feed(GET)
        await gate["started"].wait()
        await conn.settle()
        conns.append((conn, gate))
    (ours, _), (theirs, _) = conns
    assert theirs.transport.data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert ours.transport.data == theirs.transport.data
    for conn, g in conns:
        g["go"].set()
        await conn.finish()


# --- the app fails after start ----------------------------------------------------------------


@pytest.mark.parametrize(
    "app",
    [
        pytest.param(start_then_raise_app, id="start, then raises"),
        pytest.param(start_then_return_app, id="start, then returns"),
        pytest.param(start_twice_app, id="start twice"),
    ],
)
async def test_app_fails_after_start(app: Any) -> None:
    ours, theirs = await both(app, GET)
    assert theirs.transport.data.startswith(b"HTTP/1.1 200 OK\r\n") and theirs.transport.closed
    same_to_client(ours, theirs)


async def test_shutdown_between_start_and_body() -> None:
    conns = []
    for cls in (OURS, THEIRS):
        gate = {"started": asyncio.Event(), "go": asyncio.Event()}
        conn = Conn(cls, paused_app(gate))
        conn.feed(GET)
        await gate["started"].wait()
        conn.protocol.shutdown()
        gate["go"].set()
        await conn.finish()
        conns.append(conn)
    same_to_client(*conns)
