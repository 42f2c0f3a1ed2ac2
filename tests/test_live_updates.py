"""Live task events over graphql-transport-ws, across server processes, through real sockets."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from db.embedded import EmbeddedPostgres
from db.migrations import upgrade
from db.urls import asyncpg_dsn
from graphql_api.events import hub as hub_module
from graphql_api.schema.relay import from_global_id
from tests import gql
from tests.gql import Account, Api, project
from tests.servers import free_port, serving

PROTOCOL = "graphql-transport-ws"
EVENTS = """subscription($w: ID!, $p: ID) {
  taskEvents(workspaceId: $w, projectId: $p) { kind taskId at actor { displayName } task { identifier title } }
}"""
WAIT_S = 10
_ids = itertools.count(1)


class Client:
    """A graphql-transport-ws client, as graphql-ws in a browser speaks it."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def receive(self, timeout: float = WAIT_S) -> dict[str, Any]:  # noqa: ASYNC109
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if message["type"] == "ping":
                await self.send({"type": "pong"})
                continue
            return message  # type: ignore[no-any-return]

    async def init(self, token: str | None) -> dict[str, Any]:
        await self.send(
            {
                "type": "connection_init",
                "payload": {"authorization": f"Bearer {token}"} if token else {},
            }
        )
        return await self.receive()

    async def subscribe(
        self, query: str, variables: dict[str, Any], op_id: str | None = None
    ) -> str:
        op_id = op_id or str(next(_ids))
        await self.send(
            {"id": op_id, "type": "subscribe", "payload": {"query": query, "variables": variables}}
        )
        return op_id


@asynccontextmanager
async def ws_client(
    host: str, token: str | None = None, protocol: str = PROTOCOL
) -> AsyncIterator[Client]:
    async with connect(f"ws://{host}/graphql", subprotocols=[protocol]) as ws:  # type: ignore[list-item]
        client = Client(ws)
        if token is not None:
            ack = await client.init(token)
            assert ack["type"] == "connection_ack", ack
        yield client


def http_api(host: str) -> Api:
    return Api(httpx.AsyncClient(base_url=f"http://{host}"))


async def setup(api: Api) -> tuple[Account, dict[str, Any], dict[str, Any]]:
    owner = await api.register("owner")
    ws = await api.workspace(owner, "Live")
    return owner, ws, await project(api, owner, ws["id"], "LIVE")


async def create(api: Api, account: Account, project_id: str, title: str) -> dict[str, Any]:
    return await gql.task(api, account, project_id, title=title)


async def synced(
    client: Client, op_id: str, api: Api, account: Account, project_id: str
) -> dict[str, Any]:
    """Create tasks until the subscription shows one: then it is listening (the subscribe message
    and the listener are asynchronous). Returns that first event."""
    for attempt in range(50):
        await create(api, account, project_id, f"sync {attempt}")
        try:
            message = await client.receive(timeout=0.2)
        except TimeoutError:
            continue
        assert message["id"] == op_id, message
        while True:  # skip the events of earlier attempts
            try:
                message = await client.receive(timeout=0.3)
            except TimeoutError:
                return message
    raise AssertionError("the subscription never delivered an event")


async def test_an_event_written_through_one_process_reaches_a_subscriber_of_another(
    fresh_database_url: str,
) -> None:
    with serving(fresh_database_url) as a_host, serving(fresh_database_url) as b_host:
        a = http_api(a_host)
        owner, ws, proj = await setup(a)
        async with ws_client(b_host, owner.token) as b:
            op = await b.subscribe(EVENTS, {"w": ws["id"]})
            await synced(b, op, a, owner, proj["id"])
            task = await create(a, owner, proj["id"], "Written on A")
            event = await b.receive()
            assert event["type"] == "next" and event["id"] == op
            payload = event["payload"]["data"]["taskEvents"]
            assert payload["kind"] == "CREATED" and payload["taskId"] == task["id"]
            assert payload["task"] == {"identifier": task["identifier"], "title": "Written on A"}
            assert payload["actor"] == {"displayName": "owner"}
            await a.ok(
                'mutation($id: ID!) { updateTask(input: {id: $id, title: "Renamed"}) { task { id } } }',
                {"id": task["id"]},
                owner.token,
            )
            updated = (await b.receive())["payload"]["data"]["taskEvents"]
            assert (updated["kind"], updated["task"]["title"]) == ("UPDATED", "Renamed")
            await a.ok(
                "mutation($id: ID!) { deleteTask(input: {id: $id}) { task { id } } }",
                {"id": task["id"]},
                owner.token,
            )
            deleted = (await b.receive())["payload"]["data"]["taskEvents"]
            assert (
                deleted["kind"] == "DELETED" and deleted["task"]["title"] == "Renamed"
            )  # OWNER sees deleted tasks


async def test_rolled_back_writes_send_nothing_and_outsiders_hear_nothing(
    fresh_database_url: str,
) -> None:
    with serving(fresh_database_url) as host:
        api = http_api(host)
        owner, ws, proj = await setup(api)
        member, outsider = await api.register("member"), await api.register("outsider")
        await api.add(owner, ws["id"], member, "MEMBER")
        theirs = await api.workspace(outsider, "Theirs")
        their_project = await project(api, outsider, theirs["id"], "OUT")
        async with (
            ws_client(host, owner.token) as watcher,
            ws_client(host, outsider.token) as other,
        ):
            op = await watcher.subscribe(EVENTS, {"w": ws["id"]})
            await synced(watcher, op, api, owner, proj["id"])
            # The outsider cannot subscribe to a workspace that is not theirs...
            denied = await other.subscribe(EVENTS, {"w": ws["id"]})
            refusal = await other.receive()
            assert (refusal["id"], refusal["type"]) == (denied, "next")
            assert refusal["payload"]["data"] is None
            assert refusal["payload"]["errors"][0]["message"] == "no Workspace with this id"
            assert refusal["payload"]["errors"][0]["extensions"]["code"] == "NOT_FOUND"
            assert await other.receive() == {"id": denied, "type": "complete"}
            their_op = await other.subscribe(EVENTS, {"w": theirs["id"]})
            await synced(other, their_op, api, outsider, their_project["id"])
            # A mutation that ends in a top-level error is rolled back whole: no task, no event.
            failing = await api.post(
                'mutation($p: ID!) { createTask(input: {projectId: $p, title: "Never"}) { task { id project { workspace { auditEvents { totalCount } } } } } }',
                {"p": proj["id"]},
                member.token,
            )
            assert failing["errors"][0]["extensions"]["code"] == "FORBIDDEN"
            kept = await create(api, member, proj["id"], "Kept")
            event = (await watcher.receive())["payload"]["data"]["taskEvents"]
            assert event["taskId"] == kept["id"]  # the first event after the rolled-back one
            # ...and hears nothing of this workspace, only of their own.
            mine = await create(api, outsider, their_project["id"], "Theirs only")
            heard = (await other.receive())["payload"]["data"]["taskEvents"]
            assert heard["taskId"] == mine["id"]


async def test_events_loaded_once_show_each_subscriber_only_what_their_role_sees(
    fresh_database_url: str,
) -> None:
    """One load per event serves every subscriber, each with its own role: an ADMIN sees a
    deleted task, a MEMBER and a VIEWER get null; a stranger named as actor is invisible to all,
    and a task of another workspace never shows, whatever the notification says."""
    with serving(fresh_database_url) as host:
        api = http_api(host)
        owner, ws, proj = await setup(api)
        stranger = await api.register("stranger")
        theirs = await api.workspace(stranger, "Elsewhere")
        their_task = await create(
            api, stranger, (await project(api, stranger, theirs["id"], "ELS"))["id"], "Secret"
        )
        accounts = {}
        for role in ("ADMIN", "MEMBER", "VIEWER"):
            accounts[role] = await api.register(role.lower())
            await api.add(owner, ws["id"], accounts[role], role)
        async with (
            ws_client(host, accounts["ADMIN"].token) as admin,
            ws_client(host, accounts["MEMBER"].token) as member,
            ws_client(host, accounts["VIEWER"].token) as viewer,
        ):
            clients = {"ADMIN": admin, "MEMBER": member, "VIEWER": viewer}
            ops = {}
            for role, client in clients.items():
                ops[role] = await client.subscribe(EVENTS, {"w": ws["id"]})
                await synced(client, ops[role], api, owner, proj["id"])
            for client in clients.values():  # drain the other subscribers' syncing
                while True:
                    try:
                        await client.receive(timeout=0.3)
                    except TimeoutError:
                        break
            task = await create(api, owner, proj["id"], "To delete")
            await api.ok(
                "mutation($id: ID!) { deleteTask(input: {id: $id}) { task { id } } }",
                {"id": task["id"]},
                owner.token,
            )
            for role, client in clients.items():
                created = (await client.receive())["payload"]["data"]["taskEvents"]
                assert created["task"]["title"] == "To delete" and created["actor"] == {
                    "displayName": "owner"
                }
                deleted = (await client.receive())["payload"]["data"]["taskEvents"]
                assert deleted["kind"] == "DELETED" and deleted["taskId"] == task["id"]
                expected = {"identifier": task["identifier"], "title": "To delete"}
                assert deleted["task"] == (expected if role == "ADMIN" else None), role
            # Notifications as only a database user could forge them: a stranger as actor, a
            # task of another workspace under this workspace's id.
            ws_uuid, proj_uuid = (
                str(from_global_id(ws["id"])[1]),
                str(  # type: ignore[index]
                    from_global_id(proj["id"])[1]  # type: ignore[index]
                ),
            )
            forged = {
                "kind": "UPDATED",
                "task": str(from_global_id(their_task["id"])[1]),  # type: ignore[index]
                "workspace": ws_uuid,
                "project": proj_uuid,
                "actor": str(from_global_id(stranger.id)[1]),  # type: ignore[index]
                "at": "2030-01-01T00:00:00+00:00",
            }
            conn = await asyncpg.connect(asyncpg_dsn(fresh_database_url))
            try:
                await conn.execute("SELECT pg_notify('task_events', $1)", json.dumps(forged))
            finally:
                await conn.close()
            for client in clients.values():
                event = (await client.receive())["payload"]["data"]["taskEvents"]
                assert event["taskId"] == their_task["id"]
                assert event["task"] is None and event["actor"] is None


async def test_a_removed_member_stops_receiving(fresh_database_url: str) -> None:
    with serving(fresh_database_url) as host:
        api = http_api(host)
        owner, ws, proj = await setup(api)
        member = await api.register("member")
        await api.add(owner, ws["id"], member, "MEMBER")
        async with ws_client(host, member.token) as client:
            op = await client.subscribe(EVENTS, {"w": ws["id"], "p": proj["id"]})
            await synced(client, op, api, owner, proj["id"])
            await api.ok(
                "mutation($w: ID!, $u: ID!) { removeMember(input: {workspaceId: $w, userId: $u}) { removedUserId } }",
                {"w": ws["id"], "u": member.id},
                owner.token,
            )
            await create(api, owner, proj["id"], "After removal")
            assert await client.receive() == {"id": op, "type": "complete"}


async def close_code(client: Client) -> int:
    with pytest.raises(ConnectionClosed) as closed:
        await client.receive()
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


async def test_protocol_close_codes_and_limits(fresh_database_url: str) -> None:
    env = {
        "WS_INIT_TIMEOUT_SECONDS": "0.5",
        "WS_MAX_SUBSCRIPTIONS": "2",
        "WS_MAX_CONNECTIONS_PER_USER": "2",
    }
    with serving(fresh_database_url, **env) as host:
        api = http_api(host)
        owner, ws, _ = await setup(api)
        async with ws_client(host) as silent:  # no connection_init in time
            assert await close_code(silent) == 4408
        async with ws_client(host) as eager:  # subscribe before the ack
            await eager.subscribe(EVENTS, {"w": ws["id"]})
            assert await close_code(eager) == 4401
        async with ws_client(host) as forged:  # a bad token in connection_init
            await forged.send(
                {"type": "connection_init", "payload": {"authorization": "Bearer forged"}}
            )
            assert await close_code(forged) == 4403
        async with ws_client(host, owner.token) as client:
            await client.subscribe(EVENTS, {"w": ws["id"]}, "same")
            await client.subscribe(EVENTS, {"w": ws["id"]}, "same")  # a duplicate id
            assert await close_code(client) == 4409
        async with ws_client(host, owner.token) as client:
            await client.subscribe(EVENTS, {"w": ws["id"]}, "1")
            await client.subscribe(EVENTS, {"w": ws["id"]}, "2")
            third = await client.subscribe(EVENTS, {"w": ws["id"]}, "3")  # over the limit of 2
            message = await client.receive()
            assert (message["id"], message["type"]) == (third, "error")
            assert message["payload"][0]["message"] == "Subscription limit reached"
        # Connections per user (a user with none open yet): two, then refused.
        fresh = await api.register("fresh")
        async with (
            ws_client(host, fresh.token),
            ws_client(host, fresh.token),
            ws_client(host) as third,
        ):
            await third.send(
                {"type": "connection_init", "payload": {"authorization": f"Bearer {fresh.token}"}}
            )
            assert await close_code(third) == 4403
        # The legacy subprotocol is off unless enabled.
        async with ws_client(host, protocol="graphql-ws") as legacy:
            assert await close_code(legacy) == 4406


async def missed(client: Client, op_id: str) -> None:
    """The subscription ends with EVENTS_MISSED (a retryable error), then `complete`: what
    graphql-ws and Apollo clients take as "subscribe again and refetch"."""
    while True:
        message = await client.receive()
        assert message["id"] == op_id, message
        errors = message["payload"].get("errors") if message["type"] == "next" else None
        if errors:
            break
        # Events committed before the connection was lost may still arrive first.
        assert message["type"] == "next" and message["payload"]["data"]["taskEvents"], message
    assert message["payload"]["data"] is None
    assert errors[0]["extensions"]["code"] == "EVENTS_MISSED", errors
    assert await client.receive() == {"id": op_id, "type": "complete"}


async def test_the_listener_reconnects_after_postgresql_restarts(embedded_data_dir: Path) -> None:
    embedded = EmbeddedPostgres(embedded_data_dir)
    url = embedded.start("live")
    await upgrade(url)
    server = embedded._server
    try:
        with serving(url) as host:
            api = http_api(host)
            owner, ws, proj = await setup(api)
            async with (
                ws_client(host, owner.token) as client,
                ws_client(host, owner.token) as other,
            ):
                op = await client.subscribe(EVENTS, {"w": ws["id"]})
                await synced(client, op, api, owner, proj["id"])
                other_op = await other.subscribe(EVENTS, {"w": ws["id"], "p": proj["id"]})
                await synced(other, other_op, api, owner, proj["id"])
                while True:  # drain what `other`'s syncing sent `client`
                    try:
                        await client.receive(timeout=0.3)
                    except TimeoutError:
                        break
                server.stop()  # type: ignore[union-attr]
                await asyncio.to_thread(server.ensure_postgres_running)  # type: ignore[union-attr]
                # Once the listener is back, every open subscription learns that events may
                # have been committed while nobody listened: without any new write.
                await missed(client, op)
                await missed(other, other_op)
                # The client subscribes again (and would refetch): new events arrive.
                again = await client.subscribe(EVENTS, {"w": ws["id"]})
                await synced(client, again, api, owner, proj["id"])
                task = await create(api, owner, proj["id"], "After the restart")
                message = await client.receive()
                assert message["id"] == again
                assert message["payload"]["data"]["taskEvents"]["taskId"] == task["id"]
    finally:
        embedded.stop()


async def test_a_lost_listener_connection_ends_subscriptions_with_events_missed(
    fresh_database_url: str,
) -> None:
    """The LISTEN connection alone is cut (PostgreSQL stays up): writes committed until it is
    back would be lost, so its subscriptions end with EVENTS_MISSED; subscribing again works."""
    with serving(fresh_database_url) as host:
        api = http_api(host)
        owner, ws, proj = await setup(api)
        async with ws_client(host, owner.token) as client:
            op = await client.subscribe(EVENTS, {"w": ws["id"]})
            await synced(client, op, api, owner, proj["id"])
            conn = await asyncpg.connect(asyncpg_dsn(fresh_database_url))
            try:
                cut = await conn.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = 'graphql-api-listener' AND datname = current_database()"
                )
                assert cut == 1
                await create(api, owner, proj["id"], "Maybe never heard")
            finally:
                await conn.close()
            await missed(client, op)
            again = await client.subscribe(EVENTS, {"w": ws["id"]})
            await synced(client, again, api, owner, proj["id"])


async def test_a_subscription_waits_for_the_listener_and_is_refused_if_it_stays_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Registered only while the listener is connected, so it never silently misses what
    happens before the listener is back: UNAVAILABLE (in the API) if it does not come back."""
    monkeypatch.setattr(hub_module, "LISTENER_WAIT_S", 0.5)
    hub = hub_module.EventHub(f"postgresql://nobody@127.0.0.1:{free_port()}/nothing")
    try:
        with pytest.raises(hub_module.ListenerUnavailable):
            await hub.subscribe(uuid.uuid4(), None, uuid.uuid4(), None)  # type: ignore[arg-type]
        assert not hub.subscribers and not hub.connected.is_set()
    finally:
        await hub.stop()
