"""One LISTEN connection per process, outside the request pool, fanning task events out to the
subscribers of this process.

Fan-out: notifications queue up in the hub; one dispatcher task takes what has arrived (a batch
under load), loads what the subscribers need once for the batch (EventLoader: task rows, users,
every subscriber's current role) and hands each subscriber its view of each event. No work per
subscriber touches the database unless its selection asks for more than the preloaded rows.

Missed events are never silent: a subscription is registered only while the listener is
connected, and when the listener reconnects (the LISTEN connection was lost, so events may have
been committed while nobody listened) every subscription registered before is ended with
EVENTS_MISSED, as is every subscriber of a batch that could not be loaded. The listener retries
every 0.5 s at most, so it is back within a second of PostgreSQL accepting connections.

Each subscriber has a bounded queue: a subscriber too slow to keep up is dropped with an error
rather than letting the server's memory grow (see README, Live updates).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import uuid
from collections.abc import AsyncIterator, Hashable, Mapping
from dataclasses import dataclass, field

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Role
from db.urls import asyncpg_dsn
from graphql_api.events.loader import Delivery, Event, EventLoader
from graphql_api.events.publish import CHANNEL
from graphql_api.events.shared import SharedExecution
from graphql_api.observability import metrics

log = logging.getLogger(__name__)

QUEUE_SIZE = 100
BACKOFF_START_S = 0.1
BACKOFF_MAX_S = 0.5  # back within a second of PostgreSQL accepting connections again
HEALTH_CHECK_S = 0.5
LISTENER_WAIT_S = 5.0  # how long a new subscription waits for the listener before UNAVAILABLE
# Under a queue's size: a batch that has piled up while the process was busy elsewhere fills
# no queue by itself; each subscriber sends what it was given before the next batch.
BATCH_MAX = QUEUE_SIZE // 2
LOAD_TIMEOUT_S = 10.0  # a batch not loaded by then ends its subscriptions with EVENTS_MISSED
PENDING_MAX = 10_000  # notifications not yet loaded: beyond this the process cannot keep up


class SubscriberTooSlow(Exception):
    pass


class EventsMissed(Exception):
    """The listener lost its connection (or a batch could not be loaded): events may have been
    committed that this subscription will never see."""


class ListenerUnavailable(Exception):
    pass


class Signal(enum.Enum):
    REMOVED = "no longer a member"
    OVERFLOW = "fell too far behind"
    MISSED = "may have missed events"


# What a subscriber's queue holds: the event to execute itself (Delivery), or its `next`
# payload executed by the hub (bytes), or the exception that executing it raised.
Item = Delivery | bytes | Exception
# Subscribers that get the same payload of an event: cohorts, each with its view of the event.
Group = list[tuple[list["Subscriber"], Delivery]]


@dataclass(eq=False)
class Subscriber:
    workspace_id: uuid.UUID
    project_id: uuid.UUID | None
    viewer_id: uuid.UUID
    # Set when the hub executes this subscription's events (once per group of subscribers that
    # would get the same payload); None: the subscriber executes each Delivery itself.
    shared: SharedExecution | None = None
    # At most QUEUE_SIZE events; then the Signal that ends the subscription, alone.
    queue: list[Item | Signal] = field(default_factory=list)
    ended: bool = False
    role: Role | None = None  # as of the batch being fanned out
    project: str | None = None  # project_id as notifications carry it
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.project = str(self.project_id) if self.project_id is not None else None

    def wants(self, event: Event) -> bool:
        return self.project is None or event.get("project") == self.project

    def offer(self, delivery: Item) -> bool:
        """False when the subscriber overflowed (or has ended)."""
        if self.ended:
            return False
        if len(self.queue) >= QUEUE_SIZE:
            metrics.EVENTS_DROPPED.inc()
            # Policy: drop the subscriber (the client gets an error and can resubscribe and
            # refetch) instead of buffering without bound or silently skipping events.
            self.end(Signal.OVERFLOW)
            return False
        self.queue.append(delivery)
        self._ready.set()
        return True

    def end(self, signal: Signal) -> None:
        """What is still queued is moot: the client refetches (or has gone)."""
        if self.ended:
            return
        self.ended = True
        self.queue = [signal]
        self._ready.set()

    async def batches(self) -> AsyncIterator[list[Delivery] | list[bytes]]:
        """What has arrived since the last batch (a subscriber's items are all of one kind), in
        order; then the signal that ends the subscription, raised (or returned)."""
        while True:
            await self._ready.wait()
            self._ready.clear()
            items, self.queue = self.queue, []
            if not items:
                continue
            end = items[-1]
            if isinstance(end, Signal | Exception):
                # end() replaced the queue by the signal: it is alone.
                if end is Signal.OVERFLOW:
                    raise SubscriberTooSlow
                if end is Signal.MISSED:
                    raise EventsMissed
                if isinstance(end, Exception):
                    raise end
                return
            yield items  # type: ignore[misc]


class EventHub:
    def __init__(self, database_url: str) -> None:
        self.dsn = asyncpg_dsn(database_url)
        self.by_workspace: dict[uuid.UUID, set[Subscriber]] = {}
        self.connected = asyncio.Event()
        self.reconnects = 0
        self.loader: EventLoader | None = None
        self._pending: list[Event] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._dispatcher: asyncio.Task[None] | None = None

    @property
    def subscribers(self) -> set[Subscriber]:
        return set().union(*self.by_workspace.values())

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="task-event-listener")
            self._dispatcher = asyncio.create_task(self._dispatch(), name="task-event-fan-out")

    async def stop(self) -> None:
        for task in (self._task, self._dispatcher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._dispatcher = None

    async def subscribe(
        self,
        workspace_id: uuid.UUID,
        project_id: uuid.UUID | None,
        viewer_id: uuid.UUID,
        sessionmaker: async_sessionmaker[AsyncSession],
        shared: SharedExecution | None = None,
    ) -> Subscriber:
        """Registers once the listener is connected (so the subscription misses nothing from
        here on that it is not told about); ListenerUnavailable if it is not within
        LISTENER_WAIT_S."""
        if self.loader is None:
            self.loader = EventLoader(sessionmaker)
        self.start()
        if not self.connected.is_set():
            try:
                await asyncio.wait_for(self.connected.wait(), LISTENER_WAIT_S)
            except TimeoutError:
                raise ListenerUnavailable from None
        subscriber = Subscriber(workspace_id, project_id, viewer_id, shared)
        self.by_workspace.setdefault(workspace_id, set()).add(subscriber)
        metrics.SUBSCRIBERS.inc()
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        group = self.by_workspace.get(subscriber.workspace_id)
        if group is not None and subscriber in group:
            metrics.SUBSCRIBERS.dec()
            group.discard(subscriber)
            if not group:
                del self.by_workspace[subscriber.workspace_id]

    def _end(self, subscriber: Subscriber, signal: Signal) -> None:
        subscriber.end(signal)
        self.unsubscribe(subscriber)

    def _end_all(self, signal: Signal) -> None:
        for subscriber in self.subscribers:
            self._end(subscriber, signal)

    def _deliver(self, connection: object, pid: int, channel: str, raw: str) -> None:
        try:
            event = orjson.loads(raw)
            workspace_id = uuid.UUID(event["workspace"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("ignored a malformed %s notification", channel)
            return
        group = self.by_workspace.get(workspace_id)
        if not group:
            return
        if len(self._pending) >= PENDING_MAX:
            log.warning("task event fan-out fell behind; dropping workspace %s", workspace_id)
            for subscriber in list(group):
                self._end(subscriber, Signal.OVERFLOW)
            return
        self._pending.append(event)
        self._wake.set()

    async def _dispatch(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending[:BATCH_MAX], self._pending[BATCH_MAX:]
                try:
                    await self._fan_out(batch)
                except Exception:
                    # A bug, not an outage: still, nobody may silently miss this batch.
                    log.exception("task event fan-out failed; ending every subscription")
                    self._end_all(Signal.MISSED)
                await asyncio.sleep(0)  # the subscribers' turn to send

    async def _fan_out(self, batch: list[Event]) -> None:
        # Per workspace, once per batch: its subscribers and the projects they filter on.
        members: dict[uuid.UUID, list[Subscriber]] = {}
        projects: dict[uuid.UUID, set[str | None]] = {}
        wanted: list[Event] = []
        for event in batch:
            workspace_id = uuid.UUID(event["workspace"])
            if workspace_id not in members:
                members[workspace_id] = list(self.by_workspace.get(workspace_id, ()))
                projects[workspace_id] = {s.project for s in members[workspace_id]}
            filters = projects[workspace_id]
            if filters and (None in filters or event.get("project") in filters):
                wanted.append(event)
        if not wanted:
            return
        viewers = {ws: {s.viewer_id for s in subs} for ws, subs in members.items() if subs}
        assert self.loader is not None, "subscribe() sets the loader"
        try:
            loaded = await asyncio.wait_for(self.loader.load(wanted, viewers), LOAD_TIMEOUT_S)
        except Exception:
            # The events happened, but cannot be shown: their subscribers must refetch.
            log.warning("could not load %d task events; ending their subscriptions", len(wanted))
            for event in wanted:
                for subscriber in members[uuid.UUID(event["workspace"])]:
                    if subscriber.wants(event):
                        self._end(subscriber, Signal.MISSED)
            return
        cohorts = {ws: self._cohorts(ws, subs, loaded[0].roles) for ws, subs in members.items()}
        # The groups of every event of the batch execute concurrently (those whose payload is
        # written without executing, at once); payloads are offered in the order of the events.
        executed: list[tuple[Group, bytes | asyncio.Task[Item | list[Item]]]] = []
        delivered = 0
        for prepared in loaded:
            groups: dict[Hashable, Group] = {}
            for cohort in cohorts[prepared.workspace_id]:
                first = cohort[0]
                if not first.wants(prepared.event):
                    continue
                assert first.role is not None, "a cohort is of members"
                delivery = prepared.for_role(first.role)
                if first.shared is None:
                    for subscriber in cohort:
                        delivered += self._offer(subscriber, delivery)
                elif prepared.names_only_members:  # the cohort's key is its members' keys
                    key = first.shared.group_key(delivery, prepared)
                    groups.setdefault(key, []).append((cohort, delivery))
                else:
                    for s in cohort:
                        key = s.shared.group_key(delivery, prepared)  # type: ignore[union-attr]
                        groups.setdefault(key, []).append(([s], delivery))
            for group in groups.values():
                executed.append((group, _projected(group) or asyncio.create_task(_execute(group))))
        jobs = [job for _, job in executed if not isinstance(job, bytes)]
        if jobs:
            await asyncio.wait(jobs)
        for group, job in executed:
            result = job if isinstance(job, bytes) else job.result()
            each = iter(result) if isinstance(result, list) else None
            for cohort, _ in group:
                for subscriber in cohort:
                    item = result if each is None else next(each)
                    delivered += self._offer(subscriber, item)  # type: ignore[arg-type]
        metrics.EVENTS_DELIVERED.inc(delivered)

    def _cohorts(
        self,
        workspace_id: uuid.UUID,
        subscribers: list[Subscriber],
        roles: Mapping[tuple[uuid.UUID, uuid.UUID], Role],
    ) -> list[list[Subscriber]]:
        """The subscribers of a workspace that get the same view of any event: the same
        project filter, role and SharedExecution.cohort_key. Ends those no longer members."""
        cohorts: dict[Hashable, list[Subscriber]] = {}
        for subscriber in subscribers:
            if subscriber.ended:
                continue
            role = roles.get((workspace_id, subscriber.viewer_id))
            if role is None:
                self._end(subscriber, Signal.REMOVED)
                continue
            subscriber.role = role
            shared = subscriber.shared
            key = (subscriber.project, role, subscriber if shared is None else shared.cohort_key)
            cohorts.setdefault(key, []).append(subscriber)
        return list(cohorts.values())

    def _offer(self, subscriber: Subscriber, item: Item) -> bool:
        if subscriber.offer(item):
            return True
        self.unsubscribe(subscriber)
        return False

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
                # Every subscriber registered so far was registered under a connection that is
                # gone: events may have been committed while nobody listened.
                if self.subscribers:
                    log.warning("task event listener reconnected; ending subscriptions")
                    self._end_all(Signal.MISSED)
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
            except Exception:
                # Whatever it was, the listener must come back (new subscriptions wait for it).
                log.exception("task event listener failed; retrying in %.1f s", delay)
            finally:
                self.connected.clear()
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            self.reconnects += 1
            metrics.LISTENER_RECONNECTS.inc()
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_S)


def _projected(group: Group) -> bytes | None:
    """The group's payload written straight from its delivery, when it can be."""
    members, delivery = group[0]
    assert members[0].shared is not None
    payload = members[0].shared.projected(delivery)
    if payload is None:
        return None
    metrics.EVENT_PROJECTIONS.inc()
    return payload.json


async def _execute(group: Group) -> Item | list[Item]:
    """One execution for the group (its first subscriber's): the payload, or the exception, is
    theirs all. A payload with errors carries its subscriber's request id: then each of the
    others executes its own, and the items are per subscriber, in the group's order."""
    members, delivery = group[0]
    assert members[0].shared is not None
    metrics.EVENT_EXECUTIONS.inc()
    try:
        payload = await members[0].shared.payload(delivery)
    except Exception as exc:
        return exc
    if not payload.personal:
        return payload.json
    items: list[Item] = []
    for members, delivery in group:
        for subscriber in members:
            if not items:
                items.append(payload.json)
                continue
            assert subscriber.shared is not None
            metrics.EVENT_EXECUTIONS.inc()
            try:
                items.append((await subscriber.shared.payload(delivery)).json)
            except Exception as exc:
                items.append(exc)
    return items
