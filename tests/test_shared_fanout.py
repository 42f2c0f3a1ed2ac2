"""Task events executed once per group of subscribers (events/shared.py): each subscriber gets
exactly what its own execution gives. The reference is the legacy graphql-ws protocol, whose
subscriptions still execute each event themselves, on the same server, with the same token."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from graphql import parse
from websockets.asyncio.client import connect
from websockets.frames import Frame, Opcode

from db.urls import asyncpg_dsn
from graphql_api.events.frames import text_frame_header
from graphql_api.events.group_execution import role_determined
from graphql_api.events.hub import QUEUE_SIZE, Subscriber, SubscriberTooSlow
from graphql_api.schema import schema
from graphql_api.schema.relay import from_global_id
from tests.gql import Account
from tests.servers import serving
from tests.test_live_updates import Client, create, http_api, setup, synced, ws_client
from tests.test_observability import total

# Role-determined: one execution per task visibility for all of these subscribers.
SHARED = """subscription($w: ID!) {
  taskEvents(workspaceId: $w) {
    kind taskId at actor { displayName email }
    task { identifier title status deletedAt assignee { displayName } project { key } }
  }
}"""
# Fields that read with the viewer's own scope: one execution per user.
PERSONAL = """subscription Personal($w: ID!, $p: ID) {
  taskEvents(workspaceId: $w, projectId: $p) {
    kind actor { id displayName }
    task { title labels { name } project { workspace { viewerRole } } }
  }
}"""
ROLES = ("ADMIN", "MEMBER", "VIEWER")
TOKEN = "metrics-" + "s" * 32


class LegacyClient(Client):
    """The subscriptions-transport-ws protocol (`graphql-ws`), as its messages map to
    graphql-transport-ws's."""

    async def receive(self, timeout: float = 10) -> dict[str, Any]:  # noqa: ASYNC109
        while True:
            message = await super().receive(timeout)
            if message["type"] != "ka":
                kind = {"data": "next"}.get(message["type"], message["type"])
                return {**message, "type": kind}

    async def subscribe(
        self, query: str, variables: dict[str, Any], op_id: str | None = None
    ) -> str:
        op_id = op_id or "legacy"
        await self.send(
            {"id": op_id, "type": "start", "payload": {"query": query, "variables": variables}}
        )
        return op_id


@asynccontextmanager
async def legacy_client(host: str, token: str) -> AsyncIterator[Client]:
    async with connect(f"ws://{host}/graphql", subprotocols=["graphql-ws"]) as ws:  # type: ignore[list-item]
        client = LegacyClient(ws)
        assert (await client.init(token))["type"] == "connection_ack"
        yield client


async def drain(client: Client) -> None:
    """Skip the events of other clients' syncing."""
    while True:
        try:
            await client.receive(timeout=0.3)
        except TimeoutError:
            return


async def notify(database_url: str, payload: dict[str, Any]) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute("SELECT pg_notify('task_events', $1)", json.dumps(payload))
    finally:
        await conn.close()


async def executed(host: str) -> tuple[float, float]:
    """Payloads the hub executed, and those it wrote without executing (events/projector.py)."""
    async with httpx.AsyncClient(base_url=f"http://{host}") as http:
        response = await http.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
    text = response.text
    return total(text, "graphql_event_executions_total"), total(
        text, "graphql_event_projections_total"
    )


def uuid_of(global_id: str) -> str:
    return str(from_global_id(global_id)[1])  # type: ignore[index]


async def test_each_subscriber_gets_what_its_own_execution_gives(fresh_database_url: str) -> None:
    """Roles that see a deleted task and roles that do not, viewer-dependent fields, other
    variables, and an actor whom only one subscriber may see (a stranger to the workspace who
    shares another one with the MEMBER): every shared payload equals the one the subscriber's
    own execution (the legacy protocol) gives."""
    env = {"LEGACY_GRAPHQL_WS": "on", "METRICS": "on", "METRICS_TOKEN": TOKEN}
    with serving(fresh_database_url, **env) as host:
        api = http_api(host)
        owner, ws, proj = await setup(api)
        accounts: dict[str, Account] = {}
        for role in ROLES:
            accounts[role] = await api.register(role.lower())
            await api.add(owner, ws["id"], accounts[role], role)
        stranger = await api.register("stranger")
        elsewhere = await api.workspace(stranger, "Elsewhere")
        await api.add(stranger, elsewhere["id"], accounts["MEMBER"], "VIEWER")
        subscriptions = [
            (role, query, variables)
            for role in ROLES
            for query, variables in (
                (SHARED, {"w": ws["id"]}),
                (PERSONAL, {"w": ws["id"], "p": proj["id"]}),
            )
        ]
        async with _clients(host, accounts, subscriptions) as pairs:
            for shared, own in pairs:
                for client, op in (shared, own):
                    await synced(client, op, api, owner, proj["id"])
            for shared, own in pairs:
                await drain(shared[0])
                await drain(own[0])
            executions, projections = await executed(host)
            task = await create(api, owner, proj["id"], "Shared")
            await api.ok(
                "mutation($id: ID!, $a: ID) { updateTask(input: {id: $id, assigneeId: $a}) { task { id } } }",
                {"id": task["id"], "a": accounts["VIEWER"].id},
                owner.token,
            )
            await api.ok(
                "mutation($id: ID!) { deleteTask(input: {id: $id}) { task { id } } }",
                {"id": task["id"]},
                owner.token,
            )
            await notify(
                fresh_database_url,
                {
                    "kind": "UPDATED",
                    "task": uuid_of(task["id"]),
                    "workspace": uuid_of(ws["id"]),
                    "project": uuid_of(proj["id"]),
                    "actor": uuid_of(stranger.id),
                    "at": "2030-01-01T00:00:00+00:00",
                },
            )
            seen: dict[tuple[str, str], list[Any]] = {}
            for (role, query, _), (shared, own) in zip(subscriptions, pairs, strict=True):
                events = []
                for _ in range(4):
                    mine, theirs = await shared[0].receive(), await own[0].receive()
                    assert (mine["id"], mine["type"]) == (shared[1], "next"), mine
                    assert (theirs["id"], theirs["type"]) == (own[1], "next"), theirs
                    assert "errors" not in mine["payload"], mine
                    assert mine["payload"]["data"] == theirs["payload"]["data"], (role, query)
                    events.append(mine["payload"]["data"]["taskEvents"])
                seen[role, query] = events
            # Payloads made by the hub for the six graphql-transport-ws subscriptions (the
            # legacy ones execute their own): SHARED written without executing once for every
            # role for the created and updated task, twice for the deleted one (ADMIN sees it,
            # the others not), and executed once per user for the stranger's event (whom the
            # projector cannot vouch for); PERSONAL executed once per user for each event.
            after = await executed(host)
            assert (after[0] - executions, after[1] - projections) == (3 + 4 * 3, 1 + 1 + 2)
    # What differs between the groups, so that the comparison above could fail.
    for role in ROLES:
        created, updated, deleted, forged = seen[role, SHARED]
        assert created["task"]["title"] == "Shared" and created["actor"]["displayName"] == "owner"
        assert updated["task"]["assignee"] == {"displayName": "viewer"}
        assert (deleted["task"] is not None) == (role == "ADMIN"), role
        assert (forged["actor"] is not None) == (role == "MEMBER"), role
        personal = seen[role, PERSONAL][0]
        assert personal["task"]["project"]["workspace"]["viewerRole"] == role


@asynccontextmanager
async def _clients(
    host: str, accounts: dict[str, Account], subscriptions: list[tuple[str, str, dict[str, Any]]]
) -> AsyncIterator[list[tuple[tuple[Client, str], tuple[Client, str]]]]:
    """For each subscription, a graphql-transport-ws client and a legacy one."""
    pairs = []
    async with AsyncExitStack() as stack:
        for role, query, variables in subscriptions:
            token = accounts[role].token
            shared = await stack.enter_async_context(ws_client(host, token))
            own = await stack.enter_async_context(legacy_client(host, token))
            pairs.append(
                (
                    (shared, await shared.subscribe(query, variables)),
                    (own, await own.subscribe(query, variables)),
                )
            )
        yield pairs


@pytest.mark.parametrize(
    ("document", "shared"),
    [
        (SHARED, True),
        ("subscription($w: ID!) { taskEvents(workspaceId: $w) { __typename kind } }", True),
        (
            "subscription($w: ID!, $x: Boolean!) { e: taskEvents(workspaceId: $w) "
            "{ ...F task @include(if: $x) { ... on Node { id } } } } "
            "fragment F on TaskEvent { actor { email } }",
            True,
        ),
        (PERSONAL, False),
        (
            "subscription($w: ID!) { taskEvents(workspaceId: $w) { task { comments { totalCount } } } }",
            False,
        ),
        (
            "subscription($w: ID!) { taskEvents(workspaceId: $w) { ...F } } "
            "fragment F on TaskEvent { task { project { workspace { name } } } }",
            False,
        ),
    ],
)
def test_which_selections_are_shared_by_role(document: str, shared: bool) -> None:
    """Only fields that follow from the event and the task's visibility are executed once for
    every role that sees the same; a field read with the viewer's scope makes it per user."""
    definitions = list(parse(document).definitions)
    assert role_determined(schema._schema, definitions) is shared  # type: ignore[arg-type]


async def test_a_subscriber_is_handed_what_arrived_in_order_and_dropped_a_queue_behind() -> None:
    subscriber = Subscriber(uuid.uuid4(), None, uuid.uuid4())
    for n in range(3):
        assert subscriber.offer(b"%d" % n)
    batches = subscriber.batches()
    assert await anext(batches) == [b"0", b"1", b"2"]
    for n in range(QUEUE_SIZE):
        assert subscriber.offer(b"%d" % n)
    assert not subscriber.offer(b"one too many")
    with pytest.raises(SubscriberTooSlow):  # what was queued is moot: the client refetches
        await anext(batches)


@pytest.mark.parametrize("length", [0, 125, 126, 65535, 65536])
def test_frames_written_at_once_are_the_frames_websockets_makes(length: int) -> None:
    head, text, tail = b'{"id":"1","type":"next","payload":', b"x" * length, b"}"
    message = head + text + tail
    made = Frame(Opcode.TEXT, message).serialize(mask=False)
    assert text_frame_header(len(message)) + message == made
