"""Bad input from a client is a client error: BAD_REQUEST (or the right userError) as JSON with a
code, never INTERNAL or a text/plain 500, and the offending value is not echoed back. Production
mode, through the real app."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.conftest import joined_client
from tests.gql import Account, Api, error_codes, project, task

STRONG = "s" * 40
NUL = "a\x00b"
SURROGATE = "a\ud800b"


@pytest_asyncio.fixture
async def prod(connection: AsyncConnection) -> AsyncIterator[Api]:
    async with joined_client(connection, environment="production", secret_key=STRONG) as http:
        yield Api(http)


@pytest_asyncio.fixture
async def board(prod: Api) -> tuple[Account, dict[str, Any], dict[str, Any]]:
    owner = await prod.register()
    ws = await prod.workspace(owner)
    proj = await project(prod, owner, ws["id"], "BAD")
    await task(prod, owner, proj["id"], title="One")
    await task(prod, owner, proj["id"], title="Two")
    return owner, ws, proj


def assert_bad_request(body: dict[str, Any], *, echoed: str | None = None) -> None:
    assert error_codes(body) and set(error_codes(body)) == {"BAD_REQUEST"}, body
    if echoed is not None:
        assert echoed not in orjson.dumps(body).decode(), body


# Operations with one string variable each, across the kinds of field that reach PostgreSQL.
STRING_ARGUMENTS = {
    "register email": 'mutation($s: String!) { register(input: {email: $s, password: "long enough!", displayName: "x"}) { userErrors { code } } }',
    "login email": 'mutation($s: String!) { login(input: {email: $s, password: "whatever"}) { userErrors { code } } }',
    "refresh token": "mutation($s: String!) { refreshSession(input: {refreshToken: $s}) { userErrors { code } } }",
    "workspace name": "mutation($s: String!) { createWorkspace(input: {name: $s}) { userErrors { code } } }",
    "workspace slug": "query($s: String!) { workspace(slug: $s) { id } }",
    "project key": 'query($s: String!) { workspace(slug: "x") { project(key: $s) { id } } }',
    "search": 'query($s: String!) { workspace(slug: "x") { project(key: "BAD") { tasks(filter: {search: $s}) { totalCount } } } }',
    "node id": "query($s: ID!) { node(id: $s) { id } }",
    "cursor": 'query($s: String!) { workspace(slug: "x") { projects(after: $s) { totalCount } } }',
}


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["NUL", "surrogate"])
@pytest.mark.parametrize("name", list(STRING_ARGUMENTS))
async def test_unstorable_strings_in_variables(prod: Api, name: str, bad: str) -> None:
    account = await prod.register()
    # json.dumps escapes what UTF-8 cannot carry (an unpaired surrogate), as browsers' JSON does.
    response = await prod.http.post(
        "/graphql",
        content=json.dumps({"query": STRING_ARGUMENTS[name], "variables": {"s": bad}}),
        headers={"content-type": "application/json", "authorization": f"Bearer {account.token}"},
    )
    assert response.headers["content-type"].startswith("application/json")
    assert_bad_request(response.json(), echoed=bad)


async def test_unstorable_strings_in_literals_and_operation_names(prod: Api) -> None:
    account = await prod.register()
    literal = await prod.post('{ workspace(slug: "a\\u0000b") { id } }', None, account.token)
    assert_bad_request(literal)
    response = await prod.http.post(
        "/graphql",
        json={"query": "query Q { viewer { id } }", "operationName": NUL},
        headers={"authorization": f"Bearer {account.token}"},
    )
    assert_bad_request(response.json())


@pytest.mark.parametrize(
    "raw",
    [
        b'{"query": "{ viewer { id } }", "operationName": "\\ud800"}',  # a lone surrogate
        b'{"query": "{ viewer { id } }", "variables": {"x": "\\udfff"}}',
        b'{"query": "{ viewer \xff { id } }"}',  # invalid UTF-8
        b'"{ viewer { id } }"',  # a string, not an object
        b"42",
        b"null",
        b"[" * 2000 + b"]" * 2000,  # nested deeper than any decoder should follow
        b'{"query": ' + b"[" * 1500 + b"]" * 1500 + b"}",
        b"{not json",
    ],
)
async def test_bodies_that_are_not_a_graphql_request(prod: Api, raw: bytes) -> None:
    response = await prod.http.post(
        "/graphql", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert_bad_request(response.json())


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ('subscription { taskEvents(workspaceId: "x") { kind } }', None),
        ('query A { viewer { id } } subscription B { taskEvents(workspaceId: "x") { kind } }', "B"),
    ],
)
async def test_a_subscription_over_http_is_refused_with_where_to_send_it(
    prod: Api, query: str, name: str | None
) -> None:
    response = await prod.http.post("/graphql", json={"query": query, "operationName": name})
    assert response.status_code == 400, response.text
    assert_bad_request(response.json())
    assert "WebSocket" in response.json()["errors"][0]["message"]


async def test_a_query_beside_a_subscription_over_http_runs(prod: Api) -> None:
    both = 'query A { viewer { id } } subscription B { taskEvents(workspaceId: "x") { kind } }'
    response = await prod.http.post("/graphql", json={"query": both, "operationName": "A"})
    assert response.status_code == 200 and response.json()["data"] == {"viewer": None}


def cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


FORGED_CURSORS = [
    cursor([]),
    cursor({}),
    cursor("tasks:NUMBER:ASC"),
    cursor(["tasks:NUMBER:ASC"]),  # too short
    cursor(["tasks:NUMBER:ASC", 1, 2, 3]),  # too long
    cursor(["tasks:NUMBER:ASC", "one"]),  # the wrong type
    cursor(["tasks:NUMBER:ASC", 2**40]),  # out of integer range
    cursor(["tasks:NUMBER:ASC", True]),
    cursor(["tasks:CREATED_AT:ASC", "0001-01-01T00:00:00+14:00", "x"]),  # before year 1 in UTC
    cursor(
        [
            "tasks:CREATED_AT:ASC",
            "9999-12-31T23:00:00-14:00",
            "00000000-0000-0000-0000-000000000000",
        ]
    ),
    cursor(["tasks:CREATED_AT:ASC", "2026-01-01T00:00:00", "00000000-0000-0000-0000-000000000000"]),
    cursor(["tasks:DUE_AT:ASC", "a\x00b", "00000000-0000-0000-0000-000000000000"]),
    "%%%not base64%%%",
    "",
]


@pytest.mark.parametrize("forged", FORGED_CURSORS)
async def test_forged_cursors(prod: Api, board: tuple[Account, Any, Any], forged: str) -> None:
    owner, ws, _ = board
    for order in ("NUMBER", "CREATED_AT", "DUE_AT"):
        query = """query($s: String!, $after: String) { workspace(slug: $s) { project(key: "BAD") {
          tasks(first: 1, after: $after, orderBy: {field: %s, direction: ASC}) { nodes { title } } } } }"""
        body = await prod.post(query % order, {"s": ws["slug"], "after": forged}, owner.token)
        assert_bad_request(body)


@pytest.mark.parametrize(
    "when",
    [
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00Z",  # asyncpg would store it as -infinity
        "9999-12-31T23:59:59.999999Z",  # and this as infinity
        "not a date",
        "2026-13-45T99:00:00Z",
        "9" * 5000,
    ],
)
async def test_extreme_or_malformed_dates(
    prod: Api, board: tuple[Account, Any, Any], when: str
) -> None:
    owner, ws, proj = board
    listing = await prod.post(
        'query($s: String!, $d: DateTime!) { workspace(slug: $s) { project(key: "BAD") { tasks(filter: {dueBefore: $d}) { totalCount } } } }',
        {"s": ws["slug"], "d": when},
        owner.token,
    )
    assert_bad_request(listing, echoed=when if len(when) > 100 else None)
    created = await prod.post(
        'mutation($p: ID!, $d: DateTime) { createTask(input: {projectId: $p, title: "x", dueAt: $d}) { task { id } } }',
        {"p": proj["id"], "d": when},
        owner.token,
    )
    assert_bad_request(created)


async def test_dates_at_the_edges_of_the_range_work(
    prod: Api, board: tuple[Account, Any, Any]
) -> None:
    owner, _, proj = board
    for when, stored in [
        ("0001-01-02T00:00:00Z", "0001-01-02T00:00:00+00:00"),
        ("9999-12-30T23:59:59Z", "9999-12-30T23:59:59+00:00"),
        ("2026-06-01T12:00:00", "2026-06-01T12:00:00+00:00"),  # no offset: UTC
    ]:
        made = await task(prod, owner, proj["id"], title="Edge", dueAt=when)
        assert made["dueAt"] == stored


async def test_a_very_long_login_email_is_just_wrong(prod: Api) -> None:
    body = await prod.post(
        'mutation($e: String!) { login(input: {email: $e, password: "whatever"}) { userErrors { code } } }',
        {"e": "x" * 5000 + "@example.com"},
    )
    assert "errors" not in body, body
    assert body["data"]["login"]["userErrors"][0]["code"] in (
        "INVALID_CREDENTIALS",
        "INVALID_INPUT",
    )
