"""uvicorn's httptools protocol, with each response's status line and headers held back until its
first body part and written with it: one send() (and, with TCP_NODELAY, one packet) for a whole
small response instead of two. uvicorn writes the head as soon as the app sends
`http.response.start`; a GraphQL answer follows it at once, so two writes woke the client twice
and cost the server a system call per request (aiohttp coalesces the same way).

`graphql-api serve` runs uvicorn with this protocol (cli.py); WebSocket upgrades are uvicorn's own.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

ASGIApp = Any


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGIApp) -> None:
        loop = self.loop

        async def coalescing(scope: Any, receive: Any, send: Any) -> None:
            held = _CoalescingSend(cycle, send, loop)

            async def receive_first_releasing() -> Any:
                held.release()  # a client that waits for 100 Continue or a final status
                return await receive()

            try:
                await app(scope, receive_first_releasing, held)
            finally:
                held.release()  # the app failed or ended after its start: the head, as uvicorn's

        super()._start_asgi_task(cycle, coalescing)


class _CoalescingSend:
    """The cycle's `send`, with the head it writes held back until the first body part's write.
    Whatever comes first of that write, the app's next turn of the event loop (an app that
    awaits something between the two: the client sees the head then, as it would have), a
    `receive`, or the app's end, writes the head; never once the client has gone."""

    __slots__ = ("cycle", "head", "loop", "send")

    def __init__(self, cycle: RequestResponseCycle, send: Any, loop: Any) -> None:
        self.cycle, self.send, self.loop = cycle, send, loop
        self.head: bytes | None = None

    def release(self) -> None:
        head, self.head = self.head, None
        if head and not self.cycle.disconnected:
            self.cycle.transport.write(head)

    async def __call__(self, message: Any) -> None:
        cycle = self.cycle
        kind = message["type"]
        if kind == "http.response.start" and not cycle.response_started:
            transport = cycle.transport
            held = _Held(transport)
            cycle.transport = held  # type: ignore[assignment]  # a stand-in
            try:
                await self.send(message)
            finally:
                cycle.transport = transport
            self.head = held.take() or None  # None: the client left before it was written
            if self.head is not None:
                self.loop.call_soon(self.release)
            return
        if self.head is None or kind != "http.response.body":
            self.release()  # e.g. a second start: uvicorn refuses it after the head went out
            await self.send(message)
            return
        head, self.head = self.head, None
        transport = cycle.transport
        held = _Held(transport, head)
        cycle.transport = held  # type: ignore[assignment]
        try:
            await self.send(message)
        finally:
            cycle.transport = transport
            if not cycle.disconnected:
                held.flush()  # a HEAD response writes no body: its head goes now


class _Held:
    """A transport standing in for the cycle's: writes go out at flush(), or at the first write
    after `head`, as one; anything else (is_closing, close, flow control) is the real one's,
    after what is held has gone out."""

    def __init__(self, transport: Any, head: bytes | None = None) -> None:
        self.transport = transport
        self.parts: list[bytes] = [head] if head is not None else []
        self.passing = head is not None  # the body's write: goes out with the head

    def write(self, data: bytes) -> None:
        if self.passing:
            self.passing = False
            self.transport.write(b"".join([*self.parts, data]))
            self.parts = []
        else:
            self.parts.append(data)

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts = []
        return data

    def flush(self) -> None:
        if self.parts:
            self.transport.write(self.take())

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)
