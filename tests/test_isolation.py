"""Tenant isolation: nothing of another workspace is visible on any query path."""

from __future__ import annotations

import json
from typing import Any

from tests.gql import ADD_MEMBER, Api

NODE = "query($id: ID!) { node(id: $id) { id __typename ... on User { email } ... on Workspace { slug } } }"
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"


async def test_nothing_of_another_workspace_is_visible(api: Api) -> None:
    alice, alice_mate = await api.register("alice"), await api.register("mate")
    bob, bob_mate = await api.register("bob"), await api.register("bobmate")
    ws_a = await api.workspace(alice, "Alpha")
    ws_b = await api.workspace(bob, "Beta")
    await api.add(alice, ws_a["id"], alice_mate, "MEMBER")
    await api.add(bob, ws_b["id"], bob_mate, "MEMBER")

    foreign_ids = [ws_b["id"], bob.id, bob_mate.id]
    for gid in foreign_ids:
        assert (await api.ok(NODE, {"id": gid}, alice.token))["node"] is None
    assert (await api.ok(NODES, {"ids": foreign_ids}, alice.token))["nodes"] == [None] * 3
    assert (
        await api.ok(
            "query($s: String!) { workspace(slug: $s) { id } }", {"s": ws_b["slug"]}, alice.token
        )
    )["workspace"] is None

    everything = await api.ok(
        "{ viewer { id } workspaces(first: 100) { totalCount nodes { id slug members(first: 100) { nodes { user { id email } } } } } }",
        token=alice.token,
    )
    dump = json.dumps(everything)
    for secret in (ws_b["id"], ws_b["slug"], bob.id, bob.email, bob_mate.id, bob_mate.email):
        assert secret not in dump
    assert everything["workspaces"]["totalCount"] == 1

    # Own things are visible through the same paths.
    mine = await api.ok(NODES, {"ids": [ws_a["id"], alice_mate.id, alice.id]}, alice.token)
    assert [n["id"] for n in mine["nodes"]] == [ws_a["id"], alice_mate.id, alice.id]
    mate = (await api.ok(NODE, {"id": alice_mate.id}, alice.token))["node"]
    assert mate["email"] == alice_mate.email


async def test_mutations_on_another_workspace_answer_not_found(api: Api) -> None:
    alice, bob = await api.register(), await api.register()
    ws_b = await api.workspace(bob, "Beta")
    body = await api.post(
        ADD_MEMBER,
        {"input": {"workspaceId": ws_b["id"], "email": alice.email, "role": "OWNER"}},
        alice.token,
    )
    assert body["data"]["addMember"]["userErrors"][0]["code"] == "NOT_FOUND"
    for mutation in ("changeMemberRole", "removeMember"):
        role = ", role: ADMIN" if mutation == "changeMemberRole" else ""
        query = f'mutation {{ {mutation}(input: {{workspaceId: "{ws_b["id"]}", userId: "{bob.id}"{role}}}) {{ userErrors {{ code }} }} }}'
        result: dict[str, Any] = await api.post(query, token=alice.token)
        assert result["data"][mutation]["userErrors"][0]["code"] == "NOT_FOUND"


async def test_malformed_and_foreign_type_ids(api: Api) -> None:
    alice = await api.register()
    ws = await api.workspace(alice)
    for gid in ("", "!!!", "VXNlcjpub3QtYS11dWlk", alice.id.replace("V", "W")):
        assert (await api.ok(NODE, {"id": gid}, alice.token))["node"] is None
    # A user id given where a workspace id is expected is simply not found.
    body = await api.post(
        ADD_MEMBER,
        {"input": {"workspaceId": alice.id, "email": alice.email, "role": "OWNER"}},
        alice.token,
    )
    assert body["data"]["addMember"]["userErrors"][0]["code"] == "NOT_FOUND"
    assert ws["id"] != alice.id


async def test_no_project_task_label_comment_or_event_of_another_workspace(api: Api) -> None:
    from tests.gql import comment, label, project, task

    alice, bob = await api.register("alice"), await api.register("bob")
    ws_a, ws_b = await api.workspace(alice, "Alpha"), await api.workspace(bob, "Beta")
    pa = await project(api, alice, ws_a["id"], "AAA")
    pb = await project(api, bob, ws_b["id"], "BBB")
    lb = await label(api, bob, ws_b["id"], "secret-label")
    tb = await task(api, bob, pb["id"], title="secret task", labelIds=[lb["id"]], assigneeId=bob.id)
    cb = await comment(api, bob, tb["id"], "secret comment")
    events = await api.ok(
        "query($s: String!) { workspace(slug: $s) { auditEvents { nodes { id } } } }",
        {"s": ws_b["slug"]},
        bob.token,
    )
    event_id = events["workspace"]["auditEvents"]["nodes"][0]["id"]
    await task(api, alice, pa["id"], title="mine")

    foreign = [pb["id"], tb["id"], lb["id"], cb["id"], event_id]
    assert (await api.ok(NODES, {"ids": foreign}, alice.token))["nodes"] == [None] * len(foreign)
    # Filters naming foreign ids match nothing of theirs (and nothing of ours).
    query = "query($id: ID!, $f: TaskFilter) { node(id: $id) { ... on Project { tasks(filter: $f) { totalCount } } } }"
    for f in ({"labelIds": [lb["id"]]}, {"assigneeId": bob.id}, {"search": "secret"}):
        assert (await api.ok(query, {"id": pa["id"], "f": f}, alice.token))["node"]["tasks"][
            "totalCount"
        ] == 0
    everything = await api.ok(
        "{ workspaces(first: 10) { nodes { projects(first: 10, includeArchived: true) { nodes { key tasks(first: 20) { nodes { title labels { name } "
        "comments(first: 5) { nodes { body } } history(first: 5) { nodes { action changes } } } } } } labels(first: 10) { nodes { name } } "
        "auditEvents(first: 50) { nodes { action changes entityId } } } } }",
        token=alice.token,
    )
    dump = json.dumps(everything)
    for secret in (
        "BBB",
        "secret task",
        "secret-label",
        "secret comment",
        pb["id"],
        tb["id"],
        lb["id"],
        cb["id"],
    ):
        assert secret not in dump
    assert "mine" in dump
