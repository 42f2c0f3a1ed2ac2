"""Documents sent by id: Apollo's automatic persisted queries (APQ) over POST and GET, trusted
documents (TRUSTED_DOCUMENTS=only, graphql-codegen's documentId, Relay's doc_id), and the limits
and authorization that apply to them unchanged. The CLI's manifest import is in
test_documents_cli.py; Apollo Client's own link in test_real_clients.py."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from db.repositories.persisted_documents import PersistedDocumentRepository
from db.session import DbSession
from tests.conftest import bound_sessionmaker, joined_client
from tests.gql import Api, error_codes, project

VIEWER = "query Me { viewer { displayName } }"
PROJECT = "query Project($id: ID!) { node(id: $id) { ... on Project { key name } } }"
EXPENSIVE = (
    "query Expensive($n: Int!) { workspaces(first: 20) { nodes { projects(first: $n) "
    "{ totalCount } } } }"
)


def sha(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def apq(document: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha(document)}}


async def send(
    http: httpx.AsyncClient, body: dict[str, Any], token: str | None = None
) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return await http.post("/graphql", json=body, headers=headers)


async def trust(connection: AsyncConnection, documents: dict[str, str]) -> None:
    """What `graphql-api documents import` stores, inside the test's transaction."""
    async with bound_sessionmaker(connection)() as session:
        await PersistedDocumentRepository(DbSession(session)).import_trusted(documents)
        await session.commit()


async def stored(connection: AsyncConnection) -> dict[str, bool]:
    rows = await connection.execute(text("SELECT id, trusted FROM persisted_documents"))
    return {row.id: row.trusted for row in rows}


async def test_apq_round_trip_over_post_and_get(
    client: httpx.AsyncClient, api: Api, connection: AsyncConnection
) -> None:
    me = await api.register("apq")
    # By hash only, unknown: exactly what Apollo's link waits for before sending the document.
    miss = await send(client, {"extensions": apq(VIEWER)}, me.token)
    assert miss.status_code == 200
    assert miss.json()["errors"][0]["message"] == "PersistedQueryNotFound"
    assert error_codes(miss.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert sha(VIEWER) not in await stored(connection)

    registered = await send(client, {"query": VIEWER, "extensions": apq(VIEWER)}, me.token)
    assert registered.json()["data"] == {"viewer": {"displayName": "apq"}}
    assert await stored(connection) == {sha(VIEWER): False}  # registered, not trusted

    by_hash = await send(client, {"extensions": apq(VIEWER), "operationName": "Me"}, me.token)
    assert by_hash.status_code == 200
    assert by_hash.json()["data"] == {"viewer": {"displayName": "apq"}}

    # GET, as Apollo's useGETForHashedQueries sends it.
    got = await client.get(
        "/graphql",
        params={"extensions": orjson.dumps(apq(VIEWER)).decode(), "variables": "{}"},
        headers={"authorization": f"Bearer {me.token}"},
    )
    assert got.status_code == 200, got.text
    assert got.json()["data"] == {"viewer": {"displayName": "apq"}}


async def test_apq_refuses_a_wrong_hash_and_a_mutation_over_get(
    client: httpx.AsyncClient, api: Api, connection: AsyncConnection
) -> None:
    me = await api.register("apqbad")
    wrong = {"persistedQuery": {"version": 1, "sha256Hash": sha("{ viewer { id } }")}}
    mismatch = await send(client, {"query": VIEWER, "extensions": wrong}, me.token)
    assert mismatch.status_code == 400
    assert error_codes(mismatch.json()) == ["PERSISTED_QUERY_HASH_MISMATCH"]
    assert await stored(connection) == {}

    version = await send(
        client, {"extensions": {"persistedQuery": {"version": 2, "sha256Hash": "x"}}}, me.token
    )
    assert version.status_code == 400 and error_codes(version.json()) == ["BAD_REQUEST"]

    # A document that does not validate is run (its errors reported) but not kept.
    invalid = "{ viewer { nope } }"
    bad = await send(client, {"query": invalid, "extensions": apq(invalid)}, me.token)
    assert error_codes(bad.json()) == ["BAD_REQUEST"]
    assert await stored(connection) == {}

    mutation = 'mutation { createWorkspace(input: {name: "By GET"}) { workspace { id } } }'
    await send(client, {"query": mutation, "extensions": apq(mutation)}, me.token)
    refused = await client.get(
        "/graphql",
        params={"extensions": orjson.dumps(apq(mutation)).decode()},
        headers={"authorization": f"Bearer {me.token}"},
    )
    assert refused.status_code == 405
    assert error_codes(refused.json()) == ["METHOD_NOT_ALLOWED"]


async def test_trusted_only(connection: AsyncConnection) -> None:
    async with joined_client(connection, trusted_documents="only") as http:
        # Signing up is an operation of the frontend's too: trusted like the others.
        await trust(connection, {sha(REGISTER_DOC): REGISTER_DOC, "relay-1": VIEWER})
        registered = await send(
            http, {"documentId": sha(REGISTER_DOC), "variables": {"e": "t@example.test"}}
        )
        token = registered.json()["data"]["register"]["accessToken"]

        free = await send(http, {"query": VIEWER}, token)
        assert free.status_code == 403
        assert error_codes(free.json()) == ["PERSISTED_QUERY_NOT_TRUSTED"]

        # graphql-codegen's documentId (with or without its algorithm prefix), Relay's doc_id.
        for body in (
            {"documentId": "relay-1"},
            {"doc_id": "relay-1"},
            {"documentId": f"sha256:{sha(REGISTER_DOC)}", "variables": {"e": "u@example.test"}},
        ):
            ok = await send(http, body, token)
            assert ok.status_code == 200 and "errors" not in ok.json(), (body, ok.text)

        # APQ cannot add to the trusted set, and an APQ-registered document is not trusted.
        other = "query Other { viewer { id } }"
        unknown = await send(http, {"extensions": apq(other)}, token)
        assert error_codes(unknown.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
        register = await send(http, {"query": other, "extensions": apq(other)}, token)
        assert register.status_code == 403
        async with joined_client(connection) as open_http:  # another server, APQ allowed
            await send(open_http, {"query": other, "extensions": apq(other)}, token)
        assert (await stored(connection))[sha(other)] is False
        untrusted = await send(http, {"extensions": apq(other)}, token)
        assert untrusted.status_code == 403
        assert error_codes(untrusted.json()) == ["PERSISTED_QUERY_NOT_TRUSTED"]

        # GraphiQL's docs explorer: introspection stays usable where introspection is on.
        schema = await send(http, {"query": "{ __schema { queryType { name } } }"}, token)
        assert schema.json()["data"] == {"__schema": {"queryType": {"name": "Query"}}}
    async with joined_client(connection, trusted_documents="only", introspection=False) as http:
        closed = await send(http, {"query": "{ __schema { queryType { name } } }"})
        assert closed.status_code == 403


REGISTER_DOC = """mutation Register($e: String!) {
  register(input: {email: $e, password: "correct horse battery", displayName: "Trusted"}) {
    accessToken userErrors { code } } }"""


async def test_limits_and_authorization_apply_to_documents_by_id(
    connection: AsyncConnection,
) -> None:
    await trust(connection, {"expensive": EXPENSIVE, "project": PROJECT})
    async with joined_client(connection, max_nodes=120) as http:
        api = Api(http)
        owner, stranger = await api.register("owner"), await api.register("stranger")
        workspace = await api.workspace(owner, "Private")
        proj = await project(api, owner, workspace["id"], "SEC")

        at = await send(http, {"documentId": "expensive", "variables": {"n": 5}}, owner.token)
        assert (
            "errors" not in at.json() and at.json()["extensions"]["cost"]["requestedNodes"] == 120
        )
        over = await send(http, {"documentId": "expensive", "variables": {"n": 6}}, owner.token)
        assert error_codes(over.json()) == ["COST_LIMIT_EXCEEDED"] and over.json()["data"] is None

        mine = await send(
            http, {"documentId": "project", "variables": {"id": proj["id"]}}, owner.token
        )
        assert mine.json()["data"] == {"node": {"key": "SEC", "name": proj["name"]}}
        theirs = await send(
            http, {"documentId": "project", "variables": {"id": proj["id"]}}, stranger.token
        )
        assert theirs.json()["data"] == {"node": None}
        anonymous = await send(http, {"documentId": "project", "variables": {"id": proj["id"]}})
        assert error_codes(anonymous.json()) == ["UNAUTHENTICATED"]


async def test_a_document_by_id_is_parsed_once_per_process(connection: AsyncConnection) -> None:
    from strawberry.extensions.parser_cache import _get_parse_cache

    from graphql_api.documents.parsed import pinned

    document = "query Parsed { viewer { displayName email } }"
    parser = _get_parse_cache(1024)  # strawberry's shared parser cache (graphql_api/schema)
    async with joined_client(connection, fast_path=False) as http:
        me = await Api(http).register("parsed")
        await send(http, {"query": document, "extensions": apq(document)}, me.token)
        node = pinned(document)
        assert node is not None  # parsed when it was registered
        before = parser.cache_info()
        for _ in range(3):
            by_hash = await send(http, {"extensions": apq(document)}, me.token)
            assert by_hash.json()["data"]["viewer"]["displayName"] == "parsed"
        # Neither parsed nor even looked up in the text-keyed cache: the node kept with it.
        assert parser.cache_info()[:2] == before[:2]
        assert pinned(document) is node
