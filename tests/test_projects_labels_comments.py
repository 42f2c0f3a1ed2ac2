"""Projects, labels and comments through the API."""

from __future__ import annotations

from tests.gql import CREATE_LABEL, CREATE_PROJECT, Api, comment, label, project, task, user_errors

UPDATE_PROJECT = "mutation($i: UpdateProjectInput!) { updateProject(input: $i) { project { name description version } userErrors { code field } } }"
PROJECTS = "query($s: String!, $a: Boolean) { workspace(slug: $s) { projects(includeArchived: $a) { totalCount nodes { key archivedAt } } } }"


async def test_project_keys_and_updates(api: Api) -> None:
    owner = await api.register()
    ws = await api.workspace(owner)
    for key in ("W", "web", "1AB", "ABCDEFGHIJK", "A-B"):
        body = await api.post(
            CREATE_PROJECT,
            {"input": {"workspaceId": ws["id"], "key": key, "name": "x"}},
            owner.token,
        )
        assert user_errors(body, "createProject") == [("INVALID_INPUT", ["input", "key"])], key
    proj = await project(api, owner, ws["id"], "WEB2")
    body = await api.post(
        CREATE_PROJECT,
        {"input": {"workspaceId": ws["id"], "key": "WEB2", "name": "again"}},
        owner.token,
    )
    assert user_errors(body, "createProject") == [("ALREADY_EXISTS", ["input", "key"])]
    data = await api.ok(
        UPDATE_PROJECT, {"i": {"id": proj["id"], "description": "About"}}, owner.token
    )
    assert data["updateProject"]["project"] == {
        "name": "Project WEB2",
        "description": "About",
        "version": 2,
    }
    data = await api.ok(UPDATE_PROJECT, {"i": {"id": proj["id"], "description": None}}, owner.token)
    assert data["updateProject"]["project"]["description"] is None
    stale = await api.post(
        UPDATE_PROJECT, {"i": {"id": proj["id"], "name": "n", "expectedVersion": 1}}, owner.token
    )
    assert user_errors(stale, "updateProject") == [("CONFLICT", ["input", "expectedVersion"])]


async def test_archive_hides_unless_asked(api: Api) -> None:
    owner = await api.register()
    ws = await api.workspace(owner)
    a, b = await project(api, owner, ws["id"], "AAA"), await project(api, owner, ws["id"], "BBB")
    archive = "mutation($id: ID!) { archiveProject(input: {id: $id}) { project { archivedAt } } }"
    first = (await api.ok(archive, {"id": b["id"]}, owner.token))["archiveProject"]["project"][
        "archivedAt"
    ]
    again = (await api.ok(archive, {"id": b["id"]}, owner.token))["archiveProject"]["project"][
        "archivedAt"
    ]
    assert first and first == again
    visible = (await api.ok(PROJECTS, {"s": ws["slug"]}, owner.token))["workspace"]["projects"]
    assert [n["key"] for n in visible["nodes"]] == ["AAA"] and visible["totalCount"] == 1
    everything = (await api.ok(PROJECTS, {"s": ws["slug"], "a": True}, owner.token))["workspace"][
        "projects"
    ]
    assert [n["key"] for n in everything["nodes"]] == ["AAA", "BBB"] and everything[
        "totalCount"
    ] == 2
    await api.ok(
        "mutation($id: ID!) { unarchiveProject(input: {id: $id}) { project { archivedAt } } }",
        {"id": b["id"]},
        owner.token,
    )
    assert (await api.ok(PROJECTS, {"s": ws["slug"]}, owner.token))["workspace"]["projects"][
        "totalCount"
    ] == 2
    by_key = await api.ok(
        'query($s: String!) { workspace(slug: $s) { project(key: "bbb") { id } } }',
        {"s": ws["slug"]},
        owner.token,
    )
    assert by_key["workspace"]["project"]["id"] == b["id"]
    assert a["id"]


async def test_labels(api: Api) -> None:
    owner = await api.register()
    ws = await api.workspace(owner)
    proj = await project(api, owner, ws["id"])
    bug = await label(api, owner, ws["id"], "Bug", "#d73a4a")
    assert bug["color"] == "#D73A4A"
    dup = await api.post(
        CREATE_LABEL,
        {"input": {"workspaceId": ws["id"], "name": "BUG", "color": "#000000"}},
        owner.token,
    )
    assert user_errors(dup, "createLabel") == [("ALREADY_EXISTS", ["input", "name"])]
    bad = await api.post(
        CREATE_LABEL, {"input": {"workspaceId": ws["id"], "name": "x", "color": "red"}}, owner.token
    )
    assert user_errors(bad, "createLabel") == [("INVALID_INPUT", ["input", "color"])]
    t = await task(api, owner, proj["id"], labelIds=[bug["id"]])
    assert [x["name"] for x in t["labels"]] == ["Bug"]
    renamed = await api.ok(
        'mutation($id: ID!) { updateLabel(input: {id: $id, name: "Defect"}) { label { name color } } }',
        {"id": bug["id"]},
        owner.token,
    )
    assert renamed["updateLabel"]["label"] == {"name": "Defect", "color": "#D73A4A"}
    deleted = await api.ok(
        "mutation($id: ID!) { deleteLabel(input: {id: $id}) { deletedLabelId } }",
        {"id": bug["id"]},
        owner.token,
    )
    assert deleted["deleteLabel"]["deletedLabelId"] == bug["id"]
    after = await api.ok(
        "query($id: ID!) { node(id: $id) { ... on Task { labels { name } } } }",
        {"id": t["id"]},
        owner.token,
    )
    assert after["node"]["labels"] == []
    # The name is free again.
    assert (await label(api, owner, ws["id"], "Defect"))["name"] == "Defect"
    listed = await api.ok(
        "query($s: String!) { workspace(slug: $s) { labels { totalCount nodes { name } } } }",
        {"s": ws["slug"]},
        owner.token,
    )
    assert listed["workspace"]["labels"] == {"totalCount": 1, "nodes": [{"name": "Defect"}]}


async def test_comments_and_history(api: Api) -> None:
    owner, member, admin = await api.register(), await api.register(), await api.register()
    ws = await api.workspace(owner)
    await api.add(owner, ws["id"], member, "MEMBER")
    await api.add(owner, ws["id"], admin, "ADMIN")
    proj = await project(api, owner, ws["id"])
    t = await task(api, member, proj["id"], title="Commented")
    mine = await comment(api, member, t["id"], "  first!  ")
    assert mine["body"] == "first!" and mine["author"]["id"] == member.id
    edit = "mutation($id: ID!, $b: String!) { updateComment(input: {id: $id, body: $b}) { comment { body version } userErrors { code } } }"
    assert (await api.ok(edit, {"id": mine["id"], "b": "edited"}, member.token))["updateComment"][
        "comment"
    ] == {"body": "edited", "version": 2}
    not_author = await api.post(edit, {"id": mine["id"], "b": "hijack"}, admin.token)
    assert not_author["data"]["updateComment"]["userErrors"] == [{"code": "FORBIDDEN"}]
    other = await comment(api, owner, t["id"], "second")
    delete = "mutation($id: ID!) { deleteComment(input: {id: $id}) { deletedCommentId userErrors { code } } }"
    assert (await api.post(delete, {"id": other["id"]}, member.token))["data"]["deleteComment"][
        "userErrors"
    ] == [{"code": "FORBIDDEN"}]
    assert (await api.ok(delete, {"id": other["id"]}, admin.token))["deleteComment"][
        "deletedCommentId"
    ] == other["id"]
    data = await api.ok(
        "query($id: ID!) { node(id: $id) { ... on Task { comments { totalCount nodes { body author { id } } } "
        "history { nodes { action actor { id } changes entityId } } } } }",
        {"id": t["id"]},
        member.token,
    )
    assert data["node"]["comments"] == {
        "totalCount": 1,
        "nodes": [{"body": "edited", "author": {"id": member.id}}],
    }
    history = data["node"]["history"]["nodes"]
    assert [h["action"] for h in history] == ["task.create"]
    assert history[0]["actor"]["id"] == member.id and history[0]["entityId"] == t["id"]
    assert history[0]["changes"]["title"] == [None, "Commented"]


async def test_audit_events_for_admins_only(api: Api) -> None:
    owner, member = await api.register(), await api.register()
    ws = await api.workspace(owner)
    await api.add(owner, ws["id"], member, "MEMBER")
    await project(api, owner, ws["id"])
    query = "query($s: String!) { workspace(slug: $s) { auditEvents(first: 10) { totalCount nodes { action entityType } } } }"
    events = (await api.ok(query, {"s": ws["slug"]}, owner.token))["workspace"]["auditEvents"]
    assert [e["action"] for e in events["nodes"]] == [
        "project.create",
        "member.add",
        "workspace.create",
    ]
    denied = await api.post(query, {"s": ws["slug"]}, member.token)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_renaming_to_a_taken_name_is_already_exists_and_changes_nothing(api: Api) -> None:
    owner = await api.register()
    ws = await api.workspace(owner)
    await label(api, owner, ws["id"], "Bug")
    other = await label(api, owner, ws["id"], "Docs")
    rename = """mutation($id: ID!, $name: String!, $w: ID!) {
      updateLabel(input: {id: $id, name: $name}) { label { name } userErrors { code field } }
      later: createLabel(input: {workspaceId: $w, name: "Later", color: "#000000"}) { label { name } }
    }"""
    taken = await api.post(rename, {"id": other["id"], "name": "bug", "w": ws["id"]}, owner.token)
    assert "errors" not in taken, taken
    assert taken["data"]["updateLabel"] == {
        "label": None,
        "userErrors": [{"code": "ALREADY_EXISTS", "field": ["input", "name"]}],
    }
    # The request goes on: a later field in the same operation writes normally.
    assert taken["data"]["later"] == {"label": {"name": "Later"}}
    listed = await api.ok(
        "query($s: String!) { workspace(slug: $s) { labels { nodes { name } } } }",
        {"s": ws["slug"]},
        owner.token,
    )
    assert sorted(n["name"] for n in listed["workspace"]["labels"]["nodes"]) == [
        "Bug",
        "Docs",
        "Later",
    ]
