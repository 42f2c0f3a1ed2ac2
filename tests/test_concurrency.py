"""Concurrent writers on a real pool, and whole-operation rollback."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from graphql_api.resolvers import labels as label_resolvers
from tests.gql import CREATE_TASK, UPDATE_TASK, Api, project, task


async def test_concurrent_creates_get_distinct_numbers(live_api: Api) -> None:
    owner = await live_api.register()
    ws = await live_api.workspace(owner)
    proj = await project(live_api, owner, ws["id"])
    results = await asyncio.gather(
        *(
            live_api.ok(
                CREATE_TASK, {"input": {"projectId": proj["id"], "title": f"t{i}"}}, owner.token
            )
            for i in range(20)
        )
    )
    numbers = sorted(r["createTask"]["task"]["number"] for r in results)
    assert numbers == list(range(1, 21))


async def test_concurrent_updates_with_the_same_version_one_wins(live_api: Api) -> None:
    owner = await live_api.register()
    ws = await live_api.workspace(owner)
    proj = await project(live_api, owner, ws["id"])
    created = await task(live_api, owner, proj["id"], title="original")

    async def update(title: str) -> dict[str, Any]:
        body = await live_api.post(
            UPDATE_TASK,
            {"input": {"id": created["id"], "expectedVersion": 1, "title": title}},
            owner.token,
        )
        payload: dict[str, Any] = body["data"]["updateTask"]
        return payload

    a, b = await asyncio.gather(update("from A"), update("from B"))
    outcomes = sorted([("CONFLICT" if p["userErrors"] else "OK") for p in (a, b)])
    assert outcomes == ["CONFLICT", "OK"]
    winner = a if not a["userErrors"] else b
    loser = b if winner is a else a
    assert loser["userErrors"][0]["field"] == ["input", "expectedVersion"]
    node = await live_api.ok(
        "query($id: ID!) { node(id: $id) { ... on Task { title version } } }",
        {"id": created["id"]},
        owner.token,
    )
    assert node["node"] == {"title": winner["task"]["title"], "version": 2}


async def test_unexpected_failure_in_second_field_rolls_back_the_first(
    live_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await live_api.register()
    ws = await live_api.workspace(owner)

    def explode(value: str) -> str:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(label_resolvers, "_color", explode)
    body = await live_api.post(
        """mutation($ws: ID!) {
          createProject(input: {workspaceId: $ws, key: "ONE", name: "One"}) { project { id } userErrors { code } }
          createLabel(input: {workspaceId: $ws, name: "x", color: "#000000"}) { label { id } userErrors { code } }
        }""",
        {"ws": ws["id"]},
        owner.token,
    )
    assert body["data"] is None  # no field may report success
    assert [e["extensions"]["code"] for e in body["errors"]] == ["INTERNAL"]
    assert body["errors"][0]["extensions"]["requestId"]
    monkeypatch.undo()
    projects = await live_api.ok(
        "query($s: String!) { workspace(slug: $s) { projects { totalCount } } }",
        {"s": ws["slug"]},
        owner.token,
    )
    assert projects["workspace"]["projects"]["totalCount"] == 0
    # And the key is still free.
    assert (await project(live_api, owner, ws["id"], "ONE"))["key"] == "ONE"


async def test_user_error_in_one_field_keeps_the_other(live_api: Api) -> None:
    owner = await live_api.register()
    ws = await live_api.workspace(owner)
    body = await live_api.post(
        """mutation($ws: ID!) {
          a: createProject(input: {workspaceId: $ws, key: "AAA", name: "A"}) { project { key } userErrors { code } }
          b: createProject(input: {workspaceId: $ws, key: "bad key", name: "B"}) { project { key } userErrors { code } }
        }""",
        {"ws": ws["id"]},
        owner.token,
    )
    assert body["data"]["a"] == {"project": {"key": "AAA"}, "userErrors": []}
    assert body["data"]["b"] == {"project": None, "userErrors": [{"code": "INVALID_INPUT"}]}
    listed = await live_api.ok(
        "query($s: String!) { workspace(slug: $s) { projects { nodes { key } } } }",
        {"s": ws["slug"]},
        owner.token,
    )
    assert listed["workspace"]["projects"]["nodes"] == [{"key": "AAA"}]
