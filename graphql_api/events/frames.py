"""Several `next` messages of one subscription in one socket write.

Under load the hub hands a subscriber the events of a batch at once. Through ASGI each message
is a `send` of its own, and with uvicorn each send is a socket write: on the fan-out of one
workspace to a hundred connections that write (a loopback `send` also does the receiving
side's TCP work) was most of the CPU. Uvicorn's sans-I/O WebSocket protocol, the one the
server runs, frames messages and then writes what they make: `TextBatchWriter` frames the
messages of a batch the same way (its own websockets `ServerProtocol`, so extensions and close
states hold) and writes them at once, waiting, as its `send` does, while the transport's buffer
is full. Under another server, the messages go out one `send` at a time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.http.exceptions import WebSocketDisconnected
from websockets.exceptions import InvalidState
from websockets.protocol import State

# The server's own `send` of the WebSocket connection this task serves (RecordRawSend).
RAW_SEND: ContextVar[Send | None] = ContextVar("websocket_raw_send", default=None)

# Writes text messages, each `head + text + tail` (UTF-8).
TextBatchWriter = Callable[[bytes, list[bytes], bytes], Awaitable[None]]


class RecordRawSend:
    """ASGI middleware: remembers the server's `send` of a WebSocket connection, before
    Starlette wraps it, for the tasks that serve the connection."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            RAW_SEND.set(send)
        await self.app(scope, receive, send)


def batch_writer() -> TextBatchWriter | None:
    """Writes text messages in one socket write; None unless the connection is served by
    uvicorn's sans-I/O WebSocket protocol."""
    protocol: Any = getattr(RAW_SEND.get(), "__self__", None)
    if not _is_uvicorn_sansio(protocol):
        return None

    async def write(head: bytes, texts: list[bytes], tail: bytes) -> None:
        await protocol.writable.wait()  # as its send(): the client reads too slowly
        if protocol.disconnected:
            raise WebSocketDisconnected
        if protocol.close_sent:
            return  # as its send(): nothing goes out after a close
        conn = protocol.conn
        if conn.state is State.OPEN and not conn.extensions:
            # What conn.send_text frames, without an extension to apply (per-message deflate
            # is off, cli.py): a final text frame, unmasked from a server.
            parts: list[bytes] = []
            fixed = len(head) + len(tail)
            for text in texts:
                parts += (text_frame_header(fixed + len(text)), head, text, tail)
            protocol.transport.write(b"".join(parts))
            return
        try:
            for text in texts:
                conn.send_text(head + text + tail)
        except InvalidState:
            raise WebSocketDisconnected from None
        protocol.transport.write(b"".join(conn.data_to_send()))

    return write


def text_frame_header(length: int) -> bytes:
    if length < 126:
        return bytes((0x81, length))
    if length < 1 << 16:
        return b"\x81\x7e" + length.to_bytes(2, "big")
    return b"\x81\x7f" + length.to_bytes(8, "big")


def _is_uvicorn_sansio(protocol: Any) -> bool:
    try:
        from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    except ImportError:  # pragma: no cover - another server
        return False
    return isinstance(protocol, WebSocketsSansIOProtocol)
