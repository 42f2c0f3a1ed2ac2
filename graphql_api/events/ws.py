"""The graphql-transport-ws connection: authentication by the connection_init payload, a cap on
connections per user, and keep-alive pings."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from typing import Any

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)

from graphql_api.auth.tokens import authenticate
from graphql_api.context import Context
from graphql_api.settings import Settings


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
    viewer_id, bad_token = authenticate(header if isinstance(header, str) else None, settings)
    context.viewer_id, context.bad_token = viewer_id, bad_token
    return viewer_id is not None and not bad_token


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """Strawberry's handler, plus server pings while the connection is idle and the release of
    the connection's place in the per-user count."""

    async def handle(self) -> None:
        pinger = asyncio.create_task(self._ping())
        try:
            await super().handle()
        finally:
            pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pinger
            if getattr(self.context, "_admitted", False) and self.context.viewer_id is not None:
                self.view.connections.release(self.context.viewer_id)  # type: ignore[attr-defined]

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
