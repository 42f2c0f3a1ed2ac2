"""Each protection at its boundary, through the real HTTP app: the limit passes, one more is
refused with a clear code."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncConnection

from graphql_api.limits.cost import estimate_nodes
from graphql_api.limits.fragments import VISITS
from graphql_api.limits.rules import DocumentShape, Shape, rules
from graphql_api.schema import schema
from graphql_api.settings import Settings
from tests.conftest import joined_client, live_client
from tests.gql import Api, error_codes


@pytest_asyncio.fixture
async def viewer(api: Api) -> Any:
    return await api.register()


async def post(api: Api, query: str, token: str) -> dict[str, Any]:
    return await api.post(query, None, token)


def chain(depth: int) -> str:
    """A query exactly `depth` fields deep: workspace -> project -> workspace -> ... -> id."""
    parts = []
    for level in range(depth - 1):
        parts.append(
            'workspace(slug: "s") {'
            if level == 0
            else ('project(key: "K") {' if level % 2 else "workspace {")
        )
    return "{ " + " ".join(parts) + " id" + " }" * (depth - 1) + " }"


async def test_depth_boundary(api: Api, viewer: Any) -> None:
    limit = Settings().max_depth
    assert error_codes(await post(api, chain(limit), viewer.token)) == []
    refused = await post(api, chain(limit + 1), viewer.token)
    assert error_codes(refused) == ["BAD_REQUEST"]
    assert f"{limit + 1} levels deep; the limit is {limit}" in refused["errors"][0]["message"]


async def test_a_relay_query_four_connections_deep_passes(api: Api, viewer: Any) -> None:
    query = """{ workspaces(first: 5) { edges { node { projects(first: 5) { edges { node {
      tasks(first: 10) { edges { node { comments(first: 5) { edges { node { author { displayName } } } } } } } } } } } } } }"""
    assert error_codes(await post(api, query, viewer.token)) == []


def aliased(n: int) -> str:
    return "{ " + " ".join(f"a{i}: viewer {{ id }}" for i in range(n)) + " }"


async def test_alias_boundary_counted_through_fragments(api: Api, viewer: Any) -> None:
    limit = Settings().max_aliases
    assert error_codes(await post(api, aliased(limit), viewer.token)) == []
    assert error_codes(await post(api, aliased(limit + 1), viewer.token)) == ["BAD_REQUEST"]
    half = limit // 2
    fragment = (
        "fragment F on Query { " + " ".join(f"f{i}: viewer {{ id }}" for i in range(half)) + " }"
    )
    assert error_codes(await post(api, "{ ...F ...F } " + fragment, viewer.token)) == []
    over = (
        "fragment F on Query { "
        + " ".join(f"f{i}: viewer {{ id }}" for i in range(half + 1))
        + " }"
    )
    assert error_codes(await post(api, "{ ...F ...F } " + over, viewer.token)) == ["BAD_REQUEST"]


def nested_fragments(levels: int) -> str:
    """Each fragment spreads the one below twice: a naive walk reaches F0 2^levels times."""
    fragments = ["fragment F0 on Query { viewer { id } }"] + [
        f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels + 1)
    ]
    return f"{{ ...F{levels} }} " + " ".join(fragments)


def validation_visits(document: str) -> int:
    """Selection sets the limit walkers visit validating (and costing) `document`."""
    from graphql import parse, specified_rules, validate

    VISITS.clear()
    settings = Settings()
    limits = rules(
        settings.max_depth,
        settings.max_aliases,
        settings.max_fragment_spreads,
        settings.max_directives,
        True,
    )
    parsed = parse(document)
    validate(schema._schema, parsed, [*specified_rules, *limits])
    estimate_nodes(schema._schema, parsed, None, {})
    return sum(VISITS.values())


async def test_nested_fragments_are_refused_with_work_linear_in_the_document(
    api: Api, viewer: Any
) -> None:
    refused = await post(api, nested_fragments(30), viewer.token)
    assert error_codes(refused) == ["BAD_REQUEST"] and refused["data"] is None
    assert "2147483647 fragment spreads" in refused["errors"][0]["message"]
    # Each walker visits each selection set once (the operation's, 31 fragments', viewer's),
    # where following every spread would be 2^31 visits.
    assert [validation_visits(nested_fragments(n)) for n in (10, 20, 30)] == [26, 46, 66]


def test_a_document_is_costed_once_per_variables() -> None:
    """The parser caches (and persisted documents) hand back one DocumentNode per text, so a
    repeated or registered document is estimated once for given variables."""
    from graphql import parse

    document = parse(
        "query($n: Int) { workspaces(first: $n) { nodes { projects(first: 5) { nodes { id } } } } }"
    )
    VISITS.clear()
    first = estimate_nodes(schema._schema, document, None, {"n": 7})
    once = sum(VISITS.values())
    assert first == 7 + 7 * 5 and once > 0
    assert estimate_nodes(schema._schema, document, None, {"n": 7}) == first
    assert sum(VISITS.values()) == once  # the second time, no walk at all
    assert estimate_nodes(schema._schema, document, None, {"n": 3}) == 3 + 3 * 5
    assert sum(VISITS.values()) > once  # other variables, another estimate
    # Another document with the same text is another object: estimated on its own.
    same_text = parse(
        "query($n: Int) { workspaces(first: $n) { nodes { projects(first: 5) { nodes { id } } } } }"
    )
    VISITS.clear()
    assert estimate_nodes(schema._schema, same_text, None, {"n": 7}) == first
    assert sum(VISITS.values()) > 0


def spreads(n: int) -> str:
    return "{ " + " ".join(["...V"] * n) + " } fragment V on Query { viewer { id } }"


async def test_fragment_spread_boundary(api: Api, viewer: Any) -> None:
    limit = Settings().max_fragment_spreads
    assert error_codes(await post(api, spreads(limit), viewer.token)) == []
    refused = await post(api, spreads(limit + 1), viewer.token)
    assert error_codes(refused) == ["BAD_REQUEST"]
    assert f"{limit + 1} fragment spreads" in refused["errors"][0]["message"]


FRAGMENT_HEAVY = """
query { ...Q }
fragment Q on Query { a: workspaces(first: 5) { ...WS } b: workspaces(first: 2) { ...WS } }
fragment WS on WorkspaceConnection { nodes { ...W } }
fragment W on Workspace {
  projects(first: 3) { nodes { ...P } } p: projects(first: 1) { nodes { ...P } }
}
fragment P on Project { tasks(first: 4) { totalCount nodes { id } } }
"""


async def test_a_fragment_heavy_query_is_measured_as_if_written_out(api: Api, viewer: Any) -> None:
    from graphql import OperationDefinitionNode, parse

    document = parse(FRAGMENT_HEAVY)
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    # workspaces -> nodes -> projects -> nodes -> tasks -> nodes -> id; aliases a, b and p
    # (once for each spread of W); spreads of Q, WS twice, W twice, P four times.
    assert DocumentShape(document).of(operation.selection_set) == Shape(
        depth=7, aliases=4, spreads=9
    )
    body = await post(api, FRAGMENT_HEAVY, viewer.token)
    assert error_codes(body) == []
    # a: 5 + 5 x (3 + 3 x 4 + 1 + 1 x 4); b: 2 + 2 x 20.
    assert body["extensions"]["cost"]["requestedNodes"] == 105 + 42


def directed(n: int) -> str:
    return "{ viewer { id " + " ".join(["id @include(if: true)"] * n) + " } }"


async def test_directive_boundary(api: Api, viewer: Any) -> None:
    limit = Settings().max_directives
    assert error_codes(await post(api, directed(limit), viewer.token)) == []
    assert error_codes(await post(api, directed(limit + 1), viewer.token)) == ["BAD_REQUEST"]


def listed(n: int) -> str:
    statuses = ", ".join(["TODO"] * n)
    return (
        '{ node(id: "x") { ... on Project { tasks(filter: {status: ['
        + statuses
        + "]}) { totalCount } } } }"
    )


async def test_token_boundary(api: Api, viewer: Any) -> None:
    from graphql import GraphQLSyntaxError, parse

    limit = Settings().max_tokens
    n = 1
    while True:  # the first size over the limit, as graphql-core counts tokens
        try:
            parse(listed(n), max_tokens=limit)
        except GraphQLSyntaxError:
            break
        n += 1
    assert error_codes(await post(api, listed(n - 1), viewer.token)) == []
    refused = await post(api, listed(n), viewer.token)
    assert error_codes(refused) == ["BAD_REQUEST"]
    assert f"more than {limit} tokens" in refused["errors"][0]["message"]


async def test_document_size_boundary(api: Api, viewer: Any) -> None:
    limit = Settings().max_document_chars
    base = "{ viewer { id } }\n#"
    assert error_codes(await post(api, base + "x" * (limit - len(base)), viewer.token)) == []
    refused = await post(api, base + "x" * (limit - len(base) + 1), viewer.token)
    assert error_codes(refused) == ["BAD_REQUEST"]
    assert f"the limit is {limit}" in refused["errors"][0]["message"]


async def test_body_size_boundary(api: Api, viewer: Any) -> None:
    limit = Settings().max_body_bytes
    skeleton = orjson.dumps({"query": "{ viewer { id } }", "variables": {"pad": ""}})
    for size, status in ((limit, 200), (limit + 1, 413)):
        body = orjson.dumps(
            {"query": "{ viewer { id } }", "variables": {"pad": "x" * (size - len(skeleton))}}
        )
        assert len(body) == size
        response = await api.http.post(
            "/graphql",
            content=body,
            headers={"content-type": "application/json", "authorization": f"Bearer {viewer.token}"},
        )
        assert response.status_code == status, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_page_size_boundary(api: Api, viewer: Any) -> None:
    assert (
        error_codes(await post(api, "{ workspaces(first: 100) { totalCount } }", viewer.token))
        == []
    )
    refused = await post(api, "{ workspaces(first: 101) { totalCount } }", viewer.token)
    assert error_codes(refused) == ["BAD_REQUEST"]
    assert "first must be between 0 and 100" in refused["errors"][0]["message"]


async def test_batching_is_off_by_default(api: Api, viewer: Any) -> None:
    response = await api.http.post(
        "/graphql",
        json=[{"query": "{ viewer { id } }"}],
        headers={"authorization": f"Bearer {viewer.token}"},
    )
    assert response.status_code == 400


@pytest_asyncio.fixture
async def batching_api(fresh_database_url: str) -> AsyncIterator[Api]:
    # Its own pool, as in production: a batch's operations run at once, each on a session of
    # its own (on the test's one joined connection their savepoints would interleave).
    async with live_client(fresh_database_url, batching=True) as http:
        yield Api(http)


async def test_batching_when_enabled_takes_at_most_ten(batching_api: Api) -> None:
    account = await batching_api.register()
    headers = {"authorization": f"Bearer {account.token}"}
    ten = await batching_api.http.post(
        "/graphql", json=[{"query": "{ viewer { id } }"}] * 10, headers=headers
    )
    assert ten.status_code == 200 and len(ten.json()) == 10
    eleven = await batching_api.http.post(
        "/graphql", json=[{"query": "{ viewer { id } }"}] * 11, headers=headers
    )
    assert eleven.status_code == 400


@pytest_asyncio.fixture
async def small_budget_api(connection: AsyncConnection) -> AsyncIterator[Api]:
    async with joined_client(connection, max_nodes=120) as http:
        yield Api(http)


async def test_cost_boundary_and_report(small_budget_api: Api) -> None:
    account = await small_budget_api.register()
    # 20 workspaces + 20 x 5 projects = 120 nodes: at the budget.
    at = await post(
        small_budget_api,
        "{ workspaces(first: 20) { nodes { projects(first: 5) { totalCount } } } }",
        account.token,
    )
    assert error_codes(at) == [] and at["extensions"]["cost"] == {
        "requestedNodes": 120,
        "points": 2,
    }
    over = await post(
        small_budget_api,
        "{ workspaces(first: 20) { nodes { projects(first: 6) { totalCount } } } }",
        account.token,
    )
    assert error_codes(over) == ["COST_LIMIT_EXCEEDED"]
    assert over["errors"][0]["extensions"]["requestedNodes"] == 140
    assert "up to 140 nodes; the limit is 120" in over["errors"][0]["message"]
    assert over["data"] is None


async def test_every_response_reports_its_cost(api: Api, viewer: Any) -> None:
    mutation = await api.post(
        'mutation { createWorkspace(input: {name: "x"}) { workspace { id } } }', None, viewer.token
    )
    assert mutation["extensions"]["cost"] == {"requestedNodes": 0, "points": 2}
    failed = await api.post('{ node(id: "nope") { id } }', None, viewer.token)
    assert failed["extensions"]["cost"]["points"] == 1


def test_cost_estimate_defaults_and_variables() -> None:
    from graphql import parse

    doc = parse(
        'query($n: Int) { workspaces { nodes { labels(first: 3) { totalCount } projects(first: $n) { nodes { tasks { totalCount } } } } } nodes(ids: ["a", "b"]) { id } }'
    )
    # workspaces 20 (default) + labels 20*3 + projects 20*7 + tasks 140*20 (default) + 2 ids.
    assert estimate_nodes(schema._schema, doc, None, {"n": 7}) == 20 + 60 + 140 + 2800 + 2
    # Task.labels is a plain list, not a connection: it does not count.
    doc = parse('{ node(id: "x") { ... on Task { labels { name } } } }')
    assert estimate_nodes(schema._schema, doc, None, {}) == 0


@pytest_asyncio.fixture
async def five_points(connection: AsyncConnection) -> AsyncIterator[Api]:
    async with joined_client(connection, rate_limit_points=5, max_nodes=120) as http:
        yield Api(http)


async def test_documents_refused_before_execution_are_charged(five_points: Api) -> None:
    refused = [
        "{ viewer { id }",  # does not parse
        "{ viewer { nope } }",  # does not validate
        nested_fragments(30),  # over a document limit
        "{ workspaces(first: 100) { nodes { projects(first: 100) { totalCount } } } }",  # cost
        "{ viewer { id } } #" + "x" * Settings().max_document_chars,  # too long
    ]
    remaining = []
    for query in refused:  # anonymous: charged to the client address
        response = await five_points.http.post("/graphql", json={"query": query})
        assert response.status_code == 200 and response.json()["data"] is None
        remaining.append(int(response.headers["x-ratelimit-remaining"]))
    assert remaining == [4, 3, 2, 1, 0]
    over = await five_points.http.post("/graphql", json={"query": "{ viewer { id } }"})
    assert over.status_code == 429 and error_codes(over.json()) == ["RATE_LIMITED"]
    again = await five_points.http.post("/graphql", json={"query": "{ viewer { nope } }"})
    assert again.status_code == 429 and "retry-after" in again.headers


FIRST_BY_DEFAULT = """query($f: Int = 100) { workspaces(first: $f) { nodes {
  projects(first: $f) { nodes { tasks(first: $f) { nodes { id } } } } } } }"""
IDS_BY_DEFAULT = (
    "query($ids: [ID!]! = ["
    + ", ".join(f'"w{i}"' for i in range(100))
    + "]) { nodes(ids: $ids) { ... on Workspace { projects(first: 100) { nodes {"
    " tasks(first: 100) { totalCount } } } } } }"
)


def test_cost_estimate_uses_the_values_the_executor_will_use() -> None:
    from graphql import build_schema, parse

    for query in (FIRST_BY_DEFAULT, IDS_BY_DEFAULT):
        # The variable's default: 100 + 100 x 100 + 100 x 100 x 100.
        assert estimate_nodes(schema._schema, parse(query), None, {}) == 1_010_100
    # A value given wins over the default.
    assert estimate_nodes(schema._schema, parse(FIRST_BY_DEFAULT), None, {"f": 2}) == 2 + 4 + 8
    assert estimate_nodes(schema._schema, parse(IDS_BY_DEFAULT), None, {"ids": ["w"]}) == (
        1 + 100 + 100 * 100
    )
    # Else the argument's default in the schema.
    items = build_schema(
        "type Query { items(first: Int = 50): ItemConnection }"
        " type ItemConnection { nodes: [Item] } type Item { id: ID }"
    )
    assert estimate_nodes(items, parse("{ items { nodes { id } } }"), None, {}) == 50


@pytest.mark.parametrize("query", [FIRST_BY_DEFAULT, IDS_BY_DEFAULT], ids=["first", "ids"])
async def test_a_variable_default_cannot_hide_the_cost(api: Api, viewer: Any, query: str) -> None:
    refused = await post(api, query, viewer.token)
    assert error_codes(refused) == ["COST_LIMIT_EXCEEDED"] and refused["data"] is None
    assert refused["errors"][0]["extensions"]["requestedNodes"] == 1_010_100


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain", ""],
)
async def test_post_needs_a_json_content_type(api: Api, content_type: str) -> None:
    response = await api.http.post(
        "/graphql",
        content=b'{"query": "{ viewer { id } }"}',
        headers={"content-type": content_type},
    )
    assert response.status_code == 415
    assert response.json()["errors"][0]["extensions"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


async def test_queries_over_get_and_mutations_only_over_post(api: Api, viewer: Any) -> None:
    headers = {"authorization": f"Bearer {viewer.token}"}
    ok = await api.http.get("/graphql", params={"query": "{ viewer { id } }"}, headers=headers)
    assert ok.status_code == 200 and ok.json()["data"]["viewer"]["id"] == viewer.id
    refused = await api.http.get(
        "/graphql",
        params={"query": 'mutation { createWorkspace(input: {name: "x"}) { workspace { id } } }'},
        headers=headers,
    )
    assert refused.status_code == 405
    workspaces = await api.post("{ workspaces { totalCount } }", None, viewer.token)
    assert workspaces["data"]["workspaces"]["totalCount"] == 0  # nothing was created


async def test_graphql_response_json_is_negotiated(api: Api, viewer: Any) -> None:
    response = await api.http.post(
        "/graphql",
        json={"query": "{ viewer { id } }"},
        headers={
            "authorization": f"Bearer {viewer.token}",
            "accept": "application/graphql-response+json",
        },
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/graphql-response+json")


async def test_no_cors_by_default(api: Api) -> None:
    response = await api.http.options(
        "/graphql",
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )
    assert "access-control-allow-origin" not in response.headers


@pytest_asyncio.fixture
async def cors_api(connection: AsyncConnection) -> AsyncIterator[httpx.AsyncClient]:
    async with joined_client(connection, cors_origins=("https://app.example",)) as http:
        yield http


async def test_cors_allow_list(cors_api: httpx.AsyncClient) -> None:
    preflight = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    }
    allowed = await cors_api.options(
        "/graphql", headers={"origin": "https://app.example", **preflight}
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    denied = await cors_api.options(
        "/graphql", headers={"origin": "https://evil.example", **preflight}
    )
    assert denied.headers.get("access-control-allow-origin") != "https://evil.example"
