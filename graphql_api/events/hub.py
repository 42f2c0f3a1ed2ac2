"""One LISTEN connection per process, outside the request pool, fanning task events out to the
subscribers of this process.

It reconnects with exponential backoff when PostgreSQL goes away (events sent while it is away
are lost; a client that must not miss any refetches after a reconnect). Each subscriber has a
bounded queue: a subscriber too slow to keep up is dropped with an error rather than letting the
server's memory grow (see README, Live updates).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson

from db.urls import asyncpg_dsn
from graphql_api.events.publish import CHANNEL
from graphql_api.observability import metrics

log = logging.getLogger(__name__)

QUEUE_SIZE = 100
BACKOFF_START_S = 0.1
BACKOFF_MAX_S = 5.0
HEALTH_CHECK_S = 1.0


class SubscriberTooSlow(Exception):
    pass


@dataclass(eq=False)
class Subscriber:
    workspace_id: uuid.UUID
    project_id: uuid.UUID | None
    queue: asyncio.Queue[dict[str, Any] | None] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_SIZE)
    )
    overflowed: bool = False

    def wants(self, event: dict[str, Any]) -> bool:
        if event.get("workspace") != str(self.workspace_id):
            return False
        return self.project_id is None or event.get("project") == str(self.project_id)

    def offer(self, event: dict[str, Any]) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(event)
            metrics.EVENTS_DELIVERED.inc()
        except asyncio.QueueFull:
            metrics.EVENTS_DROPPED.inc()
            # Policy: drop the subscriber (the client gets an error and can resubscribe and
            # refetch) instead of buffering without bound or silently skipping events.
            self.overflowed = True
            self.queue = asyncio.Queue(1)
            self.queue.put_nowait(None)

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            event = await self.queue.get()
            if event is None:
                raise SubscriberTooSlow
            yield event


class EventHub:
    def __init__(self, database_url: str) -> None:
        self.dsn = asyncpg_dsn(database_url)
        self.subscribers: set[Subscriber] = set()
        self.connected = asyncio.Event()
        self.reconnects = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="task-event-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def subscribe(self, workspace_id: uuid.UUID, project_id: uuid.UUID | None) -> Subscriber:
        self.start()
        subscriber = Subscriber(workspace_id, project_id)
        self.subscribers.add(subscriber)
        metrics.SUBSCRIBERS.inc()
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber in self.subscribers:
            metrics.SUBSCRIBERS.dec()
        self.subscribers.discard(subscriber)

    def _deliver(self, connection: Any, pid: int, channel: str, raw: str) -> None:
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError:
            log.warning("ignored a malformed %s notification", channel)
            return
        for subscriber in list(self.subscribers):
            if subscriber.wants(event):
                subscriber.offer(event)

    async def _run(self) -> None:
        delay = BACKOFF_START_S
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    self.dsn,
                    timeout=5,
                    server_settings={"application_name": "graphql-api-listener"},
                )
                await conn.add_listener(CHANNEL, self._deliver)
                self.connected.set()
                delay = BACKOFF_START_S
                while not conn.is_closed():
                    await asyncio.sleep(HEALTH_CHECK_S)
                    await conn.execute("SELECT 1")  # notices a dead server between events
            except asyncio.CancelledError:
                raise
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning(
                    "task event listener lost PostgreSQL (%s); retrying in %.1f s",
                    type(exc).__name__,
                    delay,
                )
            finally:
                self.connected.clear()
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            self.reconnects += 1
            metrics.LISTENER_RECONNECTS.inc()
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_S)
