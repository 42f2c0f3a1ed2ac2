"""Tasks: create, update, delete, restore; validation; versions; audit."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from db.models import AuditEvent
from db.session import DbSession
from tests.gql import (
    CREATE_TASK,
    UPDATE_TASK,
    Account,
    Api,
    label,
    project,
    task,
    user_errors,
)


async def setup(api: Api) -> tuple[Account, dict[str, Any], dict[str, Any]]:
    owner = await api.register()
    ws = await api.workspace(owner)
    proj = await project(api, owner, ws["id"], "WEB")
    return owner, ws, proj


async def test_numbers_and_identifiers(api: Api) -> None:
    owner, _, proj = await setup(api)
    tasks = [await task(api, owner, proj["id"], title=f"t{i}") for i in range(3)]
    assert [t["number"] for t in tasks] == [1, 2, 3]
    assert [t["identifier"] for t in tasks] == ["WEB-1", "WEB-2", "WEB-3"]
    assert (
        tasks[0]["status"] == "TODO" and tasks[0]["priority"] == "NONE" and tasks[0]["version"] == 1
    )


async def test_create_validation_with_field_paths(api: Api) -> None:
    owner, ws, proj = await setup(api)
    stranger = await api.register()
    other_owner = await api.register()
    other_ws = await api.workspace(other_owner)
    foreign_label = await label(api, other_owner, other_ws["id"], "theirs")
    cases = [
        ({"title": ""}, ("INVALID_INPUT", ["input", "title"])),
        ({"title": "x" * 201}, ("INVALID_INPUT", ["input", "title"])),
        ({"description": "x" * 50_001}, ("INVALID_INPUT", ["input", "description"])),
        ({"assigneeId": stranger.id}, ("INVALID_INPUT", ["input", "assigneeId"])),
        ({"labelIds": [foreign_label["id"]]}, ("NOT_FOUND", ["input", "labelIds"])),
        ({"labelIds": ["garbage"]}, ("NOT_FOUND", ["input", "labelIds"])),
    ]
    for fields, expected in cases:
        body = await api.post(
            CREATE_TASK, {"input": {"projectId": proj["id"], "title": "ok", **fields}}, owner.token
        )
        assert user_errors(body, "createTask") == [expected], fields
    # Nothing was created by the failures, and the next number is still 1.
    assert (await task(api, owner, proj["id"], title="x" * 200, description="d" * 50_000))[
        "number"
    ] == 1
    assert ws["id"]


async def test_update_semantics_absent_null_and_versions(api: Api, db: DbSession) -> None:
    owner, ws, proj = await setup(api)
    bug = await label(api, owner, ws["id"], "bug")
    created = await task(
        api,
        owner,
        proj["id"],
        title="Write docs",
        description="long",
        assigneeId=owner.id,
        dueAt="2026-12-24T10:00:00+00:00",
        labelIds=[bug["id"]],
        priority="HIGH",
    )
    # Only the title changes; everything absent stays.
    data = await api.ok(
        UPDATE_TASK, {"input": {"id": created["id"], "title": "Write better docs"}}, owner.token
    )
    t = data["updateTask"]["task"]
    assert (t["title"], t["description"], t["assignee"], t["dueAt"], t["priority"]) == (
        "Write better docs",
        "long",
        {"id": owner.id},
        "2026-12-24T10:00:00+00:00",
        "HIGH",
    )
    assert t["version"] == 2
    # Explicit nulls clear the nullable fields.
    data = await api.ok(
        UPDATE_TASK,
        {
            "input": {
                "id": created["id"],
                "assigneeId": None,
                "dueAt": None,
                "description": None,
                "labelIds": None,
            }
        },
        owner.token,
    )
    t = data["updateTask"]["task"]
    assert (t["assignee"], t["dueAt"], t["description"], t["labels"]) == (None, None, None, [])
    assert t["version"] == 3
    # Only labels: still a new version.
    data = await api.ok(
        UPDATE_TASK, {"input": {"id": created["id"], "labelIds": [bug["id"]]}}, owner.token
    )
    assert data["updateTask"]["task"]["version"] == 4
    # A null for a non-nullable field is refused.
    body = await api.post(UPDATE_TASK, {"input": {"id": created["id"], "title": None}}, owner.token)
    assert user_errors(body, "updateTask") == [("INVALID_INPUT", ["input", "title"])]
    # The audit trail has before and after of each change.
    events = await db.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "task.update")
        .order_by(AuditEvent.created_at, AuditEvent.id)
    )
    assert events[0].changes == {"title": ["Write docs", "Write better docs"]}
    assert set(events[1].changes or {}) == {"assignee_id", "due_at", "description", "labelIds"}
    assert events[1].changes["labelIds"] == [[bug["id"]], []]  # type: ignore[index]


async def test_stale_expected_version_is_a_conflict_and_changes_nothing(api: Api) -> None:
    owner, _, proj = await setup(api)
    created = await task(api, owner, proj["id"], title="v1")
    await api.ok(
        UPDATE_TASK,
        {"input": {"id": created["id"], "expectedVersion": 1, "title": "v2"}},
        owner.token,
    )
    body = await api.post(
        UPDATE_TASK,
        {"input": {"id": created["id"], "expectedVersion": 1, "title": "lost"}},
        owner.token,
    )
    assert user_errors(body, "updateTask") == [("CONFLICT", ["input", "expectedVersion"])]
    assert body["data"]["updateTask"]["task"] is None
    node = await api.ok(
        "query($id: ID!) { node(id: $id) { ... on Task { title version } } }",
        {"id": created["id"]},
        owner.token,
    )
    assert node["node"] == {"title": "v2", "version": 2}


async def test_delete_restore_and_include_deleted(api: Api) -> None:
    owner, ws, proj = await setup(api)
    member = await api.register()
    await api.add(owner, ws["id"], member, "MEMBER")
    keep, gone = (
        await task(api, member, proj["id"], title="keep"),
        await task(api, member, proj["id"], title="gone"),
    )
    deleted = await api.ok(
        "mutation($id: ID!) { deleteTask(input: {id: $id}) { task { deletedAt } userErrors { code } } }",
        {"id": gone["id"]},
        member.token,
    )
    assert deleted["deleteTask"]["task"]["deletedAt"]
    query = "query($id: ID!, $d: Boolean) { node(id: $id) { ... on Project { tasks(filter: {includeDeleted: $d}) { totalCount nodes { title } } } } }"
    assert (await api.ok(query, {"id": proj["id"]}, member.token))["node"]["tasks"] == {
        "totalCount": 1,
        "nodes": [{"title": "keep"}],
    }
    forbidden = await api.post(query, {"id": proj["id"], "d": True}, member.token)
    assert forbidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    admin_view = (await api.ok(query, {"id": proj["id"], "d": True}, owner.token))["node"]["tasks"]
    assert admin_view["totalCount"] == 2
    # A deleted task's node is visible to admins only; updating it needs a restore first.
    node = "query($id: ID!) { node(id: $id) { id } }"
    assert (await api.ok(node, {"id": gone["id"]}, member.token))["node"] is None
    assert (await api.ok(node, {"id": gone["id"]}, owner.token))["node"] == {"id": gone["id"]}
    body = await api.post(UPDATE_TASK, {"input": {"id": gone["id"], "title": "x"}}, member.token)
    assert user_errors(body, "updateTask") == [("NOT_FOUND", ["input", "id"])]
    # Restoring is for ADMIN and above: to a member, a deleted task does not exist.
    restore = "mutation($id: ID!) { restoreTask(input: {id: $id}) { task { deletedAt title } userErrors { code field } } }"
    body = await api.post(restore, {"id": gone["id"]}, member.token)
    assert user_errors(body, "restoreTask") == [("NOT_FOUND", ["input", "id"])]
    restored = await api.ok(restore, {"id": gone["id"]}, owner.token)
    assert restored["restoreTask"]["task"] == {"deletedAt": None, "title": "gone"}
    assert (await api.ok(query, {"id": proj["id"]}, member.token))["node"]["tasks"][
        "totalCount"
    ] == 2
    assert keep["id"]


async def test_archived_project_takes_no_new_tasks(api: Api) -> None:
    owner, _, proj = await setup(api)
    await api.ok(
        "mutation($id: ID!) { archiveProject(input: {id: $id}) { project { archivedAt } } }",
        {"id": proj["id"]},
        owner.token,
    )
    body = await api.post(
        CREATE_TASK, {"input": {"projectId": proj["id"], "title": "late"}}, owner.token
    )
    assert user_errors(body, "createTask") == [("CONFLICT", ["input", "projectId"])]
