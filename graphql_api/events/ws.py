"""The graphql-transport-ws connection: authentication by the connection_init payload, a cap on
connections per user, and keep-alive pings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)

from graphql_api.auth.tokens import authenticate, expires_at
from graphql_api.context import REQUEST_DEADLINE, Context
from graphql_api.deadlines import Deadline
from graphql_api.documents.parsed import is_subscription
from graphql_api.events.shared import NEXT_SENDER
from graphql_api.failures import TIMEOUT
from graphql_api.observability.metrics import WS_CONNECTIONS
from graphql_api.retries import RetryingStreams
from graphql_api.settings import Settings

log = logging.getLogger(__name__)


class ConnectionRegistry:
    """Open WebSocket connections per user, in this process."""

    def __init__(self) -> None:
        self.per_user: Counter[uuid.UUID] = Counter()

    def admit(self, user_id: uuid.UUID, limit: int) -> bool:
        if self.per_user[user_id] >= limit:
            return False
        self.per_user[user_id] += 1
        return True

    def release(self, user_id: uuid.UUID) -> None:
        self.per_user[user_id] -= 1
        if self.per_user[user_id] <= 0:
            del self.per_user[user_id]


def sign_in(context: Context, settings: Settings) -> bool:
    """Authenticate from the connection_init payload: {"authorization": "Bearer <token>"}."""
    params = context.connection_params or {}
    header = params.get("authorization") or params.get("Authorization")
    header = header if isinstance(header, str) else None
    viewer_id, bad_token = authenticate(header, settings)
    context.viewer_id, context.bad_token = viewer_id, bad_token
    context._token_expires_at = expires_at(header, settings)  # type: ignore[attr-defined]
    return viewer_id is not None and not bad_token


TOKEN_EXPIRED = 4403  # graphql-transport-ws's Forbidden: the client signs in again


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """Strawberry's handler, plus server pings while the connection is idle, a connection that
    ends when its access token does (as an HTTP request with that token would be refused), and
    the release of the connection's place in the per-user count."""

    async def handle(self) -> None:
        max_tokens = self.context.settings.max_tokens
        # Queries and mutations rolled back by a deadlock run again, as over HTTP.
        self.schema = RetryingStreams(  # type: ignore[assignment]
            self.schema, lambda query, name: is_subscription(query, name, max_tokens)
        )
        self._watchers = [asyncio.create_task(self._ping())]
        WS_CONNECTIONS.inc()
        try:
            await super().handle()
        finally:
            WS_CONNECTIONS.dec()
            for watcher in self._watchers:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            if getattr(self.context, "_admitted", False) and self.context.viewer_id is not None:
                self.view.connections.release(self.context.viewer_id)  # type: ignore[attr-defined]

    def _token_expired(self) -> bool:
        expires = getattr(self.context, "_token_expires_at", None)
        return expires is not None and time.time() >= expires

    async def handle_subscribe(self, message: Any) -> None:
        if self.connection_acknowledged and self._token_expired():
            await self.websocket.close(code=TOKEN_EXPIRED, reason="access token expired")
            return
        # The operation's task (made by the call below) inherits this: the hub's pre-serialized
        # payloads go out as this operation's `next` messages, the id the only part of its own.
        token = NEXT_SENDER.set(self._next_sender(message.get("id")))
        try:
            await super().handle_subscribe(message)
        finally:
            NEXT_SENDER.reset(token)

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        """Strawberry's, under the request deadline for a query or a mutation, counted from
        its start (a subscription lives as long as its client wants): past it the operation is
        cancelled, its transaction rolled back, and the client gets an `error` message with
        TIMEOUT, as it would get a 504 over HTTP. A mutation that began to commit finishes
        (context.commit_begins)."""
        max_tokens = self.context.settings.max_tokens
        if is_subscription(operation.query, operation.operation_name, max_tokens):
            await super().run_operation(operation)
            return
        timeout_s = self.context.settings.request_timeout_s
        try:
            async with Deadline(timeout_s) as deadline:
                REQUEST_DEADLINE.set(deadline)
                await super().run_operation(operation)
        except TimeoutError:
            request_id = self.context.request_id
            log.error("TIMEOUT (request %s): over the %.1f s deadline", request_id, timeout_s)
            extensions = {"code": TIMEOUT.code, "requestId": request_id}
            with contextlib.suppress(Exception):  # the client may be gone
                await operation.send_operation_message(
                    {
                        "id": operation.id,
                        "type": "error",
                        "payload": [{"message": TIMEOUT.message, "extensions": extensions}],
                    }
                )

    def _next_sender(self, operation_id: object) -> Callable[[list[bytes]], Awaitable[None]] | None:
        send_texts = getattr(self.websocket, "send_texts", None)  # app.TextFrameWebSocketAdapter
        if send_texts is None:
            return None
        head = orjson.dumps({"id": operation_id, "type": "next"})[:-1] + b',"payload":'

        async def send_next(payloads: list[bytes]) -> None:
            await send_texts(head, payloads, b"}")

        return send_next

    async def handle_connection_init(self, message: Any) -> None:
        await super().handle_connection_init(message)
        expires = getattr(self.context, "_token_expires_at", None)
        if self.connection_acknowledged and expires is not None and len(self._watchers) == 1:
            self._watchers.append(asyncio.create_task(self._expire(expires)))

    async def _expire(self, expires: float) -> None:
        """Close the connection when its access token expires: graphql-ws clients reconnect,
        calling connectionParams again, so a client that refreshes its token carries on."""
        await asyncio.sleep(max(0.0, expires - time.time()))
        with contextlib.suppress(Exception):
            await self.websocket.close(code=TOKEN_EXPIRED, reason="access token expired")

    async def _ping(self) -> None:
        interval = self.context.settings.ws_ping_interval_s
        while True:
            await asyncio.sleep(interval)
            if self.connection_acknowledged:
                with contextlib.suppress(Exception):
                    await self.send_message({"type": "ping"})


def admit(context: Any, view: Any) -> bool:
    settings: Settings = context.settings
    if not sign_in(context, settings):
        return False
    if not view.connections.admit(context.viewer_id, settings.ws_max_connections_per_user):
        return False
    context._admitted = True
    return True
