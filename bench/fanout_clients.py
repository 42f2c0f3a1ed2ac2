"""The subscribers of `bench.fanout`, in a process of their own: graphql-transport-ws over a
minimal WebSocket client (asyncio protocol, no compression, frames parsed by hand), so that the
clients' CPU is spent receiving events rather than in a general WebSocket library.

Talks with bench.fanout by lines of JSON: reads its configuration from stdin, prints
{"ready": true} once every subscriber has received one event, then reads {"start": t} (events
with `at` >= t are counted, in order) and {"sent": n}, and prints its figures once every
subscriber has all n events, has overflowed, or `drain_s` have passed.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import sys
import time
from array import array
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson


@dataclass
class Subscriber:
    received: int = 0  # events at or after `start`
    last_at: float = 0.0
    out_of_order: int = 0
    overflowed: bool = False
    other_errors: int = 0
    completed: bool = False
    warm: bool = False
    latencies: array[float] = field(default_factory=lambda: array("d"))


def masked(opcode: int, payload: bytes) -> bytes:
    """A client frame (clients must mask; the key is random)."""
    key = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    mask = (key * (n // 4 + 1))[:n]
    body = (int.from_bytes(payload, "big") ^ int.from_bytes(mask, "big")).to_bytes(n, "big")
    return head + key + body


class Connection(asyncio.Protocol):
    def __init__(self, config: dict[str, Any], token: str, sub: Subscriber, run: Run) -> None:
        self.config, self.token, self.sub, self.run = config, token, sub, run
        self.buffer = b""
        self.upgraded = False
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            (
                f"GET /graphql HTTP/1.1\r\nHost: {self.config['host']}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
            ).encode()
        )

    def send(self, message: dict[str, Any]) -> None:
        assert self.transport is not None
        self.transport.write(masked(0x1, orjson.dumps(message)))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        now = time.time()  # every frame of this read arrived by now
        buf = self.buffer + data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buf
                return
            assert buf.startswith(b"HTTP/1.1 101"), buf[:200]
            self.upgraded = True
            buf = buf[end + 4 :]
            self.send(
                {"type": "connection_init", "payload": {"authorization": f"Bearer {self.token}"}}
            )
        pos, size = 0, len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            n, start = b1 & 0x7F, pos + 2
            if n == 126:
                if size - pos < 4:
                    break
                n, start = struct.unpack_from("!H", buf, pos + 2)[0], pos + 4
            elif n == 127:
                if size - pos < 10:
                    break
                n, start = struct.unpack_from("!Q", buf, pos + 2)[0], pos + 10
            if size - start < n:
                break
            assert b0 & 0x80 and not b1 & 0x80, "unfragmented, unmasked server frames"
            self.frame(b0 & 0x0F, buf[start : start + n], now)
            pos = start + n
        self.buffer = buf[pos:]

    def frame(self, opcode: int, payload: bytes, now: float) -> None:
        if opcode == 0x9:  # a WebSocket ping (uvicorn's keep-alive)
            assert self.transport is not None
            self.transport.write(masked(0xA, payload))
            return
        if opcode == 0x8:
            assert self.transport is not None
            self.transport.close()
            return
        if opcode != 0x1:
            return
        message = orjson.loads(payload)
        kind = message["type"]
        sub = self.sub
        if kind == "next":
            body = message["payload"]
            errors = body.get("errors")
            if errors:
                code = errors[0].get("extensions", {}).get("code")
                if code == "SUBSCRIPTION_OVERFLOW":
                    sub.overflowed = True
                else:
                    sub.other_errors += 1
                return
            at = datetime.fromisoformat(body["data"]["taskEvents"]["at"]).timestamp()
            if not sub.warm:
                sub.warm = True
                self.run.warmed()
            if at < self.run.start:
                return
            if at < sub.last_at:
                sub.out_of_order += 1
            sub.last_at = at
            sub.received += 1
            sub.latencies.append(now - at)
        elif kind == "ping":
            self.send({"type": "pong"})
        elif kind == "connection_ack":
            self.send(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {
                        "query": self.config["query"],
                        "variables": {"w": self.config["workspace"]},
                    },
                }
            )
        elif kind == "complete":
            sub.completed = True
        elif kind == "error":
            sub.other_errors += 1


class Run:
    def __init__(self, count: int) -> None:
        self.start = float("inf")  # nothing counts before the parent says
        self.to_warm = count
        self.all_warm = asyncio.Event()

    def warmed(self) -> None:
        self.to_warm -= 1
        if self.to_warm == 0:
            self.all_warm.set()


def emit(message: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(message).decode() + "\n")
    sys.stdout.flush()


async def main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    config = orjson.loads(await reader.readline())
    host_name, port = config["host"].rsplit(":", 1)
    subs = [Subscriber() for _ in config["tokens"]]
    run = Run(len(subs))
    connections = []
    for token, sub in zip(config["tokens"], subs, strict=True):
        conn, _ = await loop.create_connection(
            lambda t=token, s=sub: Connection(config, t, s, run),
            host_name,
            int(port),
        )
        connections.append(conn)
    await run.all_warm.wait()
    emit({"ready": True})
    run.start = orjson.loads(await reader.readline())["start"]
    sent = orjson.loads(await reader.readline())["sent"]
    while not all(s.overflowed or s.completed or s.received >= sent for s in subs):
        if time.time() > run.start + config["deadline_s"]:
            break
        await asyncio.sleep(0.05)
    latencies = sorted(x for s in subs for x in s.latencies)
    step = max(1, len(latencies) // 20_000)  # a sample that keeps the percentiles
    emit(
        {
            "received": [s.received for s in subs],
            "overflowed": sum(s.overflowed for s in subs),
            "out_of_order": sum(s.out_of_order for s in subs),
            "other_errors": sum(s.other_errors for s in subs),
            "completed": sum(s.completed for s in subs),
            "latencies": latencies[::step],
            "finished": time.time(),
        }
    )
    for conn in connections:
        conn.close()


if __name__ == "__main__":
    asyncio.run(main())
