"""The server's HTTP protocol (graphql_api/http_protocol.py): each response's head and its first
body part leave in one write, and the bytes are exactly uvicorn's own, for plain, HEAD, streamed,
Connection: close and keep-alive responses. Driven as uvicorn's own tests drive a protocol: bytes
in through data_received, writes recorded by a stand-in transport."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from graphql_api.http_protocol import CoalescingHttpToolsProtocol


class Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 1234)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_protocol(self, protocol: Any) -> None:
        pass


async def json_app(scope: Any, receive: Any, send: Any) -> None:
    body = b'{"data":{"ok":true}}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"20")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def streamed_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"first", "more_body": True})
    await asyncio.sleep(0)
    await send({"type": "http.response.body", "body": b"second", "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def request(method: str = "POST", close: bool = False) -> bytes:
    connection = b"Connection: close\r\n" if close else b""
    return (
        f"{method} /graphql HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n".encode()
        + connection
        + b"\r\n{}"
    )


async def served(protocol_class: type[HttpToolsProtocol], app: Any, *requests: bytes) -> Transport:
    """The writes of a connection that sends `requests` one after another, each once the one
    before is answered."""
    config = Config(app=app, http=protocol_class, lifespan="off", log_level="warning")
    config.load()
    protocol = protocol_class(config=config, server_state=ServerState(), app_state={})
    transport = Transport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    for data in requests:
        protocol.data_received(data)  # starts the request's task
        async with asyncio.timeout(5):
            await asyncio.gather(*protocol.tasks)
    return transport


@pytest.mark.parametrize(
    ("app", "requests", "writes"),
    [
        pytest.param(json_app, [request()], (1, 2), id="a JSON answer"),
        pytest.param(json_app, [request(), request()], (2, 4), id="two on one connection"),
        pytest.param(json_app, [request("HEAD")], (1, 1), id="HEAD: the head alone"),
        pytest.param(json_app, [request(close=True)], (1, 2), id="Connection: close"),
        # head and first part, the second part, the chunked terminator
        pytest.param(streamed_app, [request()], (3, 4), id="streamed"),
    ],
)
async def test_a_response_leaves_in_fewer_writes_with_uvicorns_bytes(
    app: Any, requests: list[bytes], writes: tuple[int, int]
) -> None:
    """(writes with ours, writes with uvicorn's protocol); the same bytes in the same order."""
    ours = await served(CoalescingHttpToolsProtocol, app, *requests)
    theirs = await served(HttpToolsProtocol, app, *requests)
    assert (len(ours.writes), len(theirs.writes)) == writes, (ours.writes, theirs.writes)
    assert b"".join(ours.writes) == b"".join(theirs.writes)
    assert ours.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert ours.closed == theirs.closed == (b"close" in requests[-1])
