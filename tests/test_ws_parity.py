"""The WebSocket is held to what HTTP is: a connection ends with its access token, frames are
capped like bodies, and errors are shaped (codes, masking) as over HTTP. Live server processes."""

from __future__ import annotations

import orjson
from websockets.asyncio.client import connect

from tests.gql import project
from tests.servers import serving
from tests.test_live_updates import PROTOCOL, close_code, http_api, setup, ws_client

PRODUCTION = {"ENVIRONMENT": "production", "SECRET_KEY": "p" * 40}


async def test_a_connection_ends_when_its_access_token_expires(fresh_database_url: str) -> None:
    with serving(fresh_database_url, ACCESS_TOKEN_TTL_SECONDS="4") as host:
        owner = await http_api(host).register("shortlived")  # signed in just now
        async with ws_client(host, owner.token) as client:
            # No event arrives; the server closes the connection at the token's expiry.
            assert await close_code(client) == 4403


async def test_frames_are_capped_like_request_bodies(fresh_database_url: str) -> None:
    with serving(fresh_database_url, MAX_BODY_BYTES="65536") as host:
        async with connect(f"ws://{host}/graphql", subprotocols=[PROTOCOL]) as ws:  # type: ignore[list-item]
            padding = "x" * 100_000
            await ws.send(
                orjson.dumps({"type": "connection_init", "payload": {"p": padding}}).decode()
            )
            await ws.wait_closed()
            assert ws.close_code == 1009  # message too big, before anything parsed it


async def test_errors_over_websocket_have_codes_and_no_internals(fresh_database_url: str) -> None:
    with serving(fresh_database_url, **PRODUCTION) as host:
        owner, _, proj = await setup(http_api(host))
        async with ws_client(host, owner.token) as client:
            op = await client.subscribe(
                "mutation($p: ID!, $t: String!) { createTask(input: {projectId: $p, title: $t}) { task { id } } }",
                {"p": proj["id"], "t": "a\x00b"},
            )
            message = await client.receive()
            assert message["id"] == op, message
            assert message["type"] in ("next", "error"), message
            text = orjson.dumps(message).decode()
            assert "sqlalchemy" not in text.lower() and "INSERT" not in text
            errors = (
                message["payload"] if message["type"] == "error" else message["payload"]["errors"]
            )
            assert [e["extensions"]["code"] for e in errors] == ["BAD_REQUEST"]
            if message["type"] == "next":
                assert await client.receive() == {"id": op, "type": "complete"}
            # A typo: no schema hints in production, and a code.
            typo = await client.subscribe("{ viewer { displayNam } }", {})
            message = await client.receive()
            assert message["id"] == typo
            errors = (
                message["payload"] if message["type"] == "error" else message["payload"]["errors"]
            )
            assert errors[0]["extensions"]["code"] == "BAD_REQUEST"
            assert "Did you mean" not in errors[0]["message"]


async def test_create_task_over_websocket_refuses_another_workspaces_project_like_http(
    fresh_database_url: str,
) -> None:
    """createTask alone in its operation is one statement on the write pool over a WebSocket
    too: another workspace's project is NOT_FOUND on projectId, as a missing one, and takes no
    number; the user's own project then gets number 1."""
    create = (
        "mutation($p: ID!, $t: String!) { createTask(input: {projectId: $p, title: $t}) {"
        " task { identifier } userErrors { code field } } }"
    )
    with serving(fresh_database_url, **PRODUCTION) as host:
        api = http_api(host)
        owner, _, proj = await setup(api)
        stranger = await api.register("stranger")
        theirs = await api.workspace(stranger, "Theirs")
        foreign = await project(api, stranger, theirs["id"], "THEIR")
        async with ws_client(host, owner.token) as client:
            answers = []
            for project_id in (foreign["id"], proj["id"]):
                op = await client.subscribe(create, {"p": project_id, "t": "over ws"})
                message = await client.receive()
                assert message["id"] == op and message["type"] == "next", message
                assert "errors" not in message["payload"], message
                answers.append(message["payload"]["data"]["createTask"])
                assert await client.receive() == {"id": op, "type": "complete"}
        assert answers == [
            {"task": None, "userErrors": [{"code": "NOT_FOUND", "field": ["input", "projectId"]}]},
            {"task": {"identifier": "LIVE-1"}, "userErrors": []},
        ]
        # Their project's first task is still number 1: the refused create took none.
        made = await api.ok(create, {"p": foreign["id"], "t": "theirs"}, stranger.token)
        assert made["createTask"] == {"task": {"identifier": "THEIR-1"}, "userErrors": []}
        await api.http.aclose()
