"""The clients our users run, against live server processes: the npm graphql-ws client, Apollo
Client, and GraphiQL in headless Chromium with every other host blocked. The scripts live in
tests/clients/ (npm packages pinned by its package-lock.json; `make test` installs them); each
prints what it saw as JSON and the assertions are here."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gql import Account, Api, project
from tests.servers import serving

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = ROOT / "tests" / "clients"
OUTPUT = ROOT / "tests" / "output"  # screenshots, kept after the run (git-ignored)


def run_client(script: str, arguments: dict[str, Any], timeout: float = 180) -> dict[str, Any]:
    node = shutil.which("node")
    assert node, "Node.js is needed for the real-client tests"
    assert (CLIENTS / "node_modules" / "graphql-ws").is_dir(), (
        "run `npm ci --prefix tests/clients` (make test does it)"
    )
    done = subprocess.run(
        [node, str(CLIENTS / script), json.dumps(arguments)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stderr}\n{done.stdout}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def signed_in_project(host: str) -> tuple[Api, Account, dict[str, Any], dict[str, Any]]:
    api = Api(httpx.AsyncClient(base_url=f"http://{host}"))
    owner = await api.register("realclient")
    workspace = await api.workspace(owner, "Clients")
    return api, owner, workspace, await project(api, owner, workspace["id"], "RC")


def strip_typename(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip_typename(v) for k, v in value.items() if k != "__typename"}
    if isinstance(value, list):
        return [strip_typename(v) for v in value]
    return value


async def test_graphql_ws_client_sees_a_tasks_life_written_through_another_process(
    fresh_database_url: str,
) -> None:
    with serving(fresh_database_url) as writer, serving(fresh_database_url) as subscriber:
        _, owner, workspace, proj = await signed_in_project(writer)
        seen = run_client(
            "graphql_ws_events.mjs",
            {
                "subscribeHost": subscriber,
                "writeHost": writer,
                "token": owner.token,
                "workspaceId": workspace["id"],
                "projectId": proj["id"],
            },
        )
    assert seen["failures"] == []
    task = seen["task"]
    events = [e["data"]["taskEvents"] for e in seen["events"]]
    assert [e["kind"] for e in events] == ["CREATED", "UPDATED", "DELETED", "RESTORED"]
    assert {e["taskId"] for e in events} == {task["id"]}
    assert [e["task"]["title"] for e in events] == [
        "Written elsewhere",
        "Renamed elsewhere",
        "Renamed elsewhere",  # the OWNER still sees a deleted task
        "Renamed elsewhere",
    ]
    assert {e["actor"]["displayName"] for e in events} == {"realclient"}
    assert all("errors" not in e for e in seen["events"])


async def test_apollo_client_signs_in_pages_updates_and_subscribes(
    fresh_database_url: str,
) -> None:
    with serving(fresh_database_url) as host:
        seen = run_client("apollo.mjs", {"host": host, "email": "apollo@example.test"})
    # relayStylePagination merged three pages of two through the cursors.
    assert seen["pages"] == [2, 4, 5]
    assert seen["paged"] == ["APL-1", "APL-2", "APL-3", "APL-4", "APL-5"]
    assert seen["totalCount"] == 5
    board = seen["apolloBoard"]
    assert board["workspace"]["__typename"] == "Workspace"
    assert board["workspace"]["project"]["tasks"]["__typename"] == "TaskConnection"
    assert {e["node"]["__typename"] for e in board["workspace"]["project"]["tasks"]["edges"]} == {
        "Task"
    }
    # Apollo added __typename everywhere; otherwise the answer is what a plain client gets.
    assert strip_typename(board) == seen["plainBoard"]
    assert seen["updated"]["userErrors"] == []
    assert (seen["updated"]["task"]["title"], seen["updated"]["task"]["version"]) == (
        "Renamed once",
        2,
    )
    assert seen["stale"]["task"] is None
    assert [(e["code"], e["field"]) for e in seen["stale"]["userErrors"]] == [
        ("CONFLICT", ["input", "expectedVersion"])
    ]
    assert strip_typename(seen["cached"]) == {"title": "Renamed once", "version": 2}
    assert seen["event"]["kind"] == "CREATED"
    assert seen["event"]["task"]["title"].startswith("Live ")


def readme_browser_example(host: str) -> str:
    """The graphql-ws example of README's Live updates, pointed at this test's server."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Live updates", 1)[1]
    found = re.search(r"```js\n(.*?)```", section, re.S)
    assert found, "README's Live updates section has no js example"
    code = found.group(1)
    assert "ws://127.0.0.1:8000/graphql" in code
    return code.replace("ws://127.0.0.1:8000/graphql", f"ws://{host}/graphql")


async def test_graphiql_in_chromium_works_offline(fresh_database_url: str) -> None:
    if not shutil.which("chromium"):
        # CI installs it (.ci/run); a developer's machine may not have it yet.
        assert os.environ.get("CI") != "true", "Debian's chromium is missing"
        pytest.skip("needs Debian's chromium: apt-get install chromium")
    out = OUTPUT / "graphiql"
    shutil.rmtree(out, ignore_errors=True)
    with serving(fresh_database_url) as host:
        _, owner, workspace, proj = await signed_in_project(host)
        seen = run_client(
            "graphiql.mjs",
            {
                "host": host,
                "token": owner.token,
                "workspaceId": workspace["id"],
                "projectId": proj["id"],
                "outDir": str(out),
                "chromium": shutil.which("chromium"),
                "readmeExample": readme_browser_example(host),
            },
        )
    assert seen["blocked"] == []  # nothing asked of any other host
    assert seen["problems"] == []  # no script error, no CSP violation
    assert seen["rootTypes"] == ["query", "mutation", "subscription"]  # the docs explorer
    assert seen["query"]["data"] == {
        "viewer": {"displayName": "realclient"},
        "workspaces": {"nodes": [{"name": "Clients", "viewerRole": "OWNER"}]},
    }
    event = seen["event"]["data"]["taskEvents"]
    assert event["kind"] == "CREATED" and event["task"]["title"].startswith("From GraphiQL")
    assert seen["readme"]["kind"] == "CREATED"
    assert seen["readme"]["task"]["title"].startswith("For the README example")
    assert seen["readme"]["actor"] == {"displayName": "realclient"}
    for shot in ("graphiql-query.png", "graphiql-subscription.png"):
        assert (out / shot).stat().st_size > 20_000, shot


async def test_apollo_persisted_query_link_registers_then_sends_only_the_hash(
    fresh_database_url: str,
) -> None:
    with serving(fresh_database_url) as host:
        seen = run_client("apollo_apq.mjs", {"host": host, "email": "apq@example.test"})
    me = {"viewer": {"__typename": "User", "displayName": "APQ User"}}
    assert seen["first"] == seen["second"] == me
    # The first: by hash only over GET, PersistedQueryNotFound, then the document with its hash.
    first = seen["firstRequests"]
    assert [(r["method"], r["hasDocument"]) for r in first] == [("GET", False), ("POST", True)]
    assert first[0]["hash"] == first[1]["hash"] and len(first[0]["hash"]) == 64
    # The second: the hash alone, answered.
    assert [(r["method"], r["hasDocument"]) for r in seen["secondRequests"]] == [("GET", False)]
    assert seen["secondRequests"][0]["hash"] == first[0]["hash"]
    rows = await fetch_rows(fresh_database_url, "SELECT id, trusted FROM persisted_documents")
    assert [(r["id"], r["trusted"]) for r in rows] == [(first[0]["hash"], False)]


async def fetch_rows(url: str, sql: str) -> list[Any]:
    import asyncpg

    from tests.databases import dsn

    conn = await asyncpg.connect(dsn(url))
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()
