"""Concurrent writers on a real pool, and whole-operation rollback."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from db.urls import asyncpg_dsn
from graphql_api.resolvers import labels as label_resolvers
from graphql_api.resolvers import tasks as task_resolvers
from tests.conftest import pause_once
from tests.gql import (
    CHANGE_MEMBER_ROLE,
    CREATE_TASK,
    REMOVE_MEMBER,
    UPDATE_TASK,
    Api,
    project,
    task,
)
from tests.test_one_statement_attack import _waiting_on_a_lock


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


@pytest.mark.parametrize("change", ["removed", "made a viewer"])
async def test_a_role_taken_away_during_a_write_waits_for_it(
    live_api: Api, fresh_database_url: str, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """A member's write has checked their role; before it commits, an owner removes them (or
    makes them a VIEWER). The write holds the role it checked (FOR SHARE): the change waits for
    the write's commit, then applies. Had it not waited, a write of someone no longer allowed
    to write would commit after the change that took the right away."""
    owner = await live_api.register()
    member = await live_api.register("member")
    ws = await live_api.workspace(owner)
    await live_api.add(owner, ws["id"], member, "MEMBER")
    proj = await project(live_api, owner, ws["id"])
    created = await task(live_api, owner, proj["id"], title="before")
    checked, release = pause_once(monkeypatch, task_resolvers, "authorize")
    update = asyncio.create_task(
        live_api.post(
            UPDATE_TASK,
            {"input": {"id": created["id"], "expectedVersion": 1, "title": "by the member"}},
            member.token,
        )
    )
    await checked.wait()
    if change == "removed":
        query, variables = REMOVE_MEMBER, {"workspaceId": ws["id"], "userId": member.id}
    else:
        query = CHANGE_MEMBER_ROLE
        variables = {"workspaceId": ws["id"], "userId": member.id, "role": "VIEWER"}
    taking = asyncio.create_task(live_api.post(query, {"input": variables}, owner.token))
    await _waiting_on_a_lock(asyncpg_dsn(fresh_database_url))  # the change, on the member's row
    assert not taking.done()
    release.set()
    updated, taken = await update, await taking
    assert updated["data"]["updateTask"]["userErrors"] == [], updated
    assert "errors" not in taken and not next(iter(taken["data"].values()))["userErrors"], taken
    log = await live_api.ok(
        "query($s: String!) { workspace(slug: $s) { auditEvents(first: 5) { nodes { action } } } }",
        {"s": ws["slug"]},
        owner.token,
    )
    actions = [n["action"] for n in log["workspace"]["auditEvents"]["nodes"]]
    assert actions.index("task.update") > actions.index(  # newest first: the write came first
        "member.remove" if change == "removed" else "member.change_role"
    )
    # And after the change, the member's next write is refused.
    again = await live_api.post(
        UPDATE_TASK,
        {"input": {"id": created["id"], "expectedVersion": 2, "title": "again"}},
        member.token,
    )
    errors = again["data"]["updateTask"]["userErrors"]
    assert [e["code"] for e in errors] == ["NOT_FOUND" if change == "removed" else "FORBIDDEN"]
