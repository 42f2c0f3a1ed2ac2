"""Fuzzing the live schema: operations generated from it (valid and invalid, with strings that
hold NUL, unpaired surrogates and thousands of characters, random integers, IDs, dates and
cursors) sent over HTTP to a live server in production mode, signed in and anonymous. Whatever
comes in, the answer is JSON with a code, never a 5xx, never INTERNAL, never past the deadline.

`FUZZ_EXAMPLES` sets the examples per strategy (default 100: a bounded step of `make test`);
tests/output/fuzz-summary.json records what was sent."""

from __future__ import annotations

import base64
import json
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema, nodes

from graphql_api.schema import schema
from tests.conftest import fresh_database
from tests.servers import serving
from tests.test_real_clients import OUTPUT

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
DEADLINE_S = 5.0
SENT: Counter[str] = Counter()
STATUSES: Counter[int] = Counter()

# Text meant to break things: NUL, control, bidi and combining characters, quotes, very long.
# Unpaired surrogates are their own, rarer branch: one anywhere in a body makes the whole body
# invalid JSON, which would stop every other value at the door.
HOSTILE_TEXT = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=50),
    st.text(st.sampled_from("ab \x00\x01\u202e\u0301'\"\\"), min_size=1, max_size=8),
    st.sampled_from(["\x00", "a\x00b", "\u202e", "e\u0301", "%s%n", "' OR 1=1 --", "\\u0000"]),
    st.text(max_size=5).map(lambda s: s * 2000),
)
SURROGATE_TEXT = st.text(st.sampled_from("ab\ud800\udfff"), min_size=1, max_size=6)
DATETIMES = st.one_of(
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.sampled_from(["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2026-02-30"]),
    HOSTILE_TEXT,
).map(nodes.String)
SCALARS = {"DateTime": DATETIMES, "JSON": st.just(nodes.String("{}"))}


def cursor_values() -> st.SearchStrategy[str]:
    """Cursors as a forger would make them: base64 of JSON arrays of anything."""
    leaf = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False),
        st.text(max_size=40),
        st.sampled_from(["tasks:NUMBER:ASC", "tasks:CREATED_AT:DESC", "tasks:DUE_AT:ASC"]),
    )
    value = st.recursive(leaf, lambda inner: st.lists(inner, max_size=4), max_leaves=8)
    return st.one_of(
        value.map(lambda v: base64.urlsafe_b64encode(json.dumps(v).encode()).decode()),
        st.text(max_size=60),
    )


class Target:
    def __init__(
        self, http: httpx.Client, token: str, workspace: dict[str, Any], project_id: str
    ) -> None:
        self.http, self.token, self.workspace, self.project_id = http, token, workspace, project_id

    def send(self, kind: str, body: dict[str, Any], signed_in: bool) -> None:
        headers = {"content-type": "application/json"}
        if signed_in:
            headers["authorization"] = f"Bearer {self.token}"
        # json.dumps escapes unpaired surrogates as \\udXXX, as JavaScript's JSON.stringify does.
        started = time.monotonic()
        response = self.http.post("/graphql", content=json.dumps(body), headers=headers)
        elapsed = time.monotonic() - started
        SENT[kind] += 1
        STATUSES[response.status_code] += 1
        assert response.status_code < 500, (response.status_code, body, response.text[:500])
        assert response.headers["content-type"].startswith("application/json"), response.text
        answer = response.json()
        codes = [e.get("extensions", {}).get("code") for e in answer.get("errors") or []]
        assert None not in codes, (body, answer)
        assert "INTERNAL" not in codes, (body, answer)
        assert elapsed < DEADLINE_S + 1, (elapsed, body)


@pytest_asyncio.fixture(scope="module")
async def fuzz_database_url(pg_admin_url: str, template_db: str) -> AsyncIterator[str]:
    async with fresh_database(pg_admin_url, template_db, "fuzz") as url:
        yield url


@pytest.fixture(scope="module")
def target(fuzz_database_url: str) -> Iterator[Target]:
    env = {
        "ENVIRONMENT": "production",
        "SECRET_KEY": "f" * 40,
        "RATE_LIMIT_POINTS": "100000000",
        "REQUEST_TIMEOUT_SECONDS": str(DEADLINE_S),
    }
    with (
        serving(fuzz_database_url, **env) as host,
        httpx.Client(base_url=f"http://{host}", timeout=30) as http,
    ):
        register = http.post(
            "/graphql",
            json={
                "query": 'mutation { register(input: {email: "fuzz@example.test", password: "fuzzing all day", displayName: "Fuzz"}) { accessToken } }'
            },
        ).json()
        token = register["data"]["register"]["accessToken"]
        auth = {"authorization": f"Bearer {token}"}
        created = http.post(
            "/graphql",
            json={
                "query": 'mutation { createWorkspace(input: {name: "Fuzz", slug: "fuzz"}) { workspace { id slug } } }'
            },
            headers=auth,
        ).json()
        workspace = created["data"]["createWorkspace"]["workspace"]
        project = http.post(
            "/graphql",
            json={
                "query": 'mutation($w: ID!) { createProject(input: {workspaceId: $w, key: "FZ", name: "Fuzz"}) { project { id } } }',
                "variables": {"w": workspace["id"]},
            },
            headers=auth,
        ).json()
        for n in range(3):
            http.post(
                "/graphql",
                json={
                    "query": "mutation($p: ID!, $t: String!) { createTask(input: {projectId: $p, title: $t}) { task { id } } }",
                    "variables": {
                        "p": project["data"]["createProject"]["project"]["id"],
                        "t": f"Task {n}",
                    },
                },
                headers=auth,
            )
        yield Target(http, token, workspace, project["data"]["createProject"]["project"]["id"])
    summary = {"examples_per_strategy": EXAMPLES, "sent": dict(SENT), "statuses": dict(STATUSES)}
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / "fuzz-summary.json").write_text(json.dumps(summary, indent=2))


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("CI") == "true",  # reproducible in CI; varied on machines
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)


@FUZZ
@given(
    document=from_schema(schema._schema, custom_scalars=SCALARS, allow_x00=True, codec=None),
    signed_in=st.booleans(),
)
def test_valid_operations(target: Target, document: str, signed_in: bool) -> None:
    target.send("valid", {"query": document}, signed_in)


@FUZZ
@given(
    document=from_schema(
        schema._schema, custom_scalars=SCALARS, allow_x00=True, codec=None, mode=Mode.NEGATIVE
    ),
    signed_in=st.booleans(),
)
def test_invalid_operations(target: Target, document: str, signed_in: bool) -> None:
    target.send("invalid", {"query": document}, signed_in)


# Operations whose strings reach statements when the ids are real: the fuzzer aims hostile
# values at the workspace and project that exist, not only at lookups that stop early.
VARIABLE_OPERATIONS = [
    'query($s: String!, $a: String, $f: Int, $d: DateTime) { workspace(slug: "fuzz") { project(key: "FZ") { tasks(first: $f, after: $a, filter: {search: $s, dueBefore: $d}) { totalCount nodes { id } } } } }',
    'query($a: String, $o: TaskOrderField!) { workspace(slug: "fuzz") { project(key: "FZ") { tasks(first: 2, after: $a, orderBy: {field: $o, direction: DESC}) { nodes { id } } } } }',
    "query($i: ID!, $is: [ID!]!) { node(id: $i) { id } nodes(ids: $is) { id } }",
    'mutation($w: ID!, $s: String!) { createLabel(input: {workspaceId: $w, name: $s, color: "#123456"}) { userErrors { code } } }',
    "mutation($p: ID!, $s: String!, $d: DateTime) { createTask(input: {projectId: $p, title: $s, description: $s, dueAt: $d}) { userErrors { code } } }",
    "mutation($w: ID!, $s: String!) { createProject(input: {workspaceId: $w, key: $s, name: $s, description: $s}) { userErrors { code } } }",
    "mutation($s: String!) { createWorkspace(input: {name: $s, slug: $s}) { userErrors { code } } }",
    "mutation($s: String!) { login(input: {email: $s, password: $s}) { userErrors { code } } }",
    "mutation($s: String!) { refreshSession(input: {refreshToken: $s}) { userErrors { code } } }",
]
REAL = "<the real id>"  # replaced by the workspace's or project's id when sent
JSON_VALUE = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), HOSTILE_TEXT
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@pytest.mark.parametrize(
    "operation", VARIABLE_OPERATIONS, ids=lambda op: op.split("{")[1].split("(")[0].strip()
)
@FUZZ
@given(
    variables=st.fixed_dictionaries(
        {
            "s": st.one_of(HOSTILE_TEXT, HOSTILE_TEXT, HOSTILE_TEXT, SURROGATE_TEXT, JSON_VALUE),
            "a": cursor_values(),
            "f": st.one_of(st.integers(min_value=-(2**40), max_value=2**40), JSON_VALUE),
            "d": DATETIMES.map(lambda node: node.value),
            "i": st.one_of(cursor_values(), HOSTILE_TEXT),
            "is": st.lists(st.one_of(cursor_values(), HOSTILE_TEXT), max_size=5),
            "w": st.one_of(st.just(REAL), st.just(REAL), cursor_values()),
            "p": st.one_of(st.just(REAL), st.just(REAL), cursor_values()),
            "o": st.sampled_from(["NUMBER", "CREATED_AT", "UPDATED_AT", "DUE_AT", "PRIORITY"]),
        }
    ),
    # Mostly none: a name that matches no operation stops the request before anything runs.
    operation_name=st.one_of(st.none(), st.none(), st.none(), HOSTILE_TEXT, SURROGATE_TEXT),
    signed_in=st.one_of(st.just(True), st.just(True), st.just(False)),
)
def test_hostile_variables_cursors_and_names(
    target: Target,
    operation: str,
    variables: dict[str, Any],
    operation_name: str | None,
    signed_in: bool,
) -> None:
    real = {"w": target.workspace["id"], "p": target.project_id}
    variables = {k: real[k] if v == REAL else v for k, v in variables.items()}
    body: dict[str, Any] = {"query": operation, "variables": variables}
    if operation_name is not None:
        body["operationName"] = operation_name
    target.send("variables", body, signed_in)
