"""The fast path (one SQL statement per query) answers exactly as the resolvers do.

A corpus of operations covering every field and argument of the read API, with fragments,
aliases, variables, every order in both directions, page sizes, cursors and filters, runs
through both paths on the same data; the responses must be identical, and the ones the fast
path claims must really have been answered by one statement.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from db.session import DbSession
from tests.conftest import SqlCounter
from tests.gql import UPDATE_TASK, Account, Api, comment, label, project, task
from tests.test_task_lists import bulk_tasks

TASK_ALL = """
  __typename id number identifier title description status priority dueAt createdAt updatedAt
  deletedAt version
  assignee { id email displayName createdAt }
  createdBy { displayName }
  labels { id name color createdAt }
  project { id key name description archivedAt createdAt updatedAt version workspace { slug } }
"""
CONNECTION = """
  totalCount
  pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  edges { cursor node { number title dueAt priority updatedAt } }
"""


async def world(api: Api, db: DbSession) -> dict[str, Any]:
    owner, mate, leaver = (
        await api.register("owner"),
        await api.register("mate"),
        await api.register("leaver"),
    )
    viewer = await api.register("viewer")
    ws = await api.workspace(owner, "Fast Lane")
    other = await api.workspace(owner, "Second")
    for account, role in ((mate, "MEMBER"), (leaver, "MEMBER"), (viewer, "VIEWER")):
        await api.add(owner, ws["id"], account, role)
    web = await project(api, owner, ws["id"], "WEB")
    old = await project(api, owner, ws["id"], "OLD")
    await api.ok(
        "mutation($id: ID!) { archiveProject(input: {id: $id}) { project { id } } }",
        {"id": old["id"]},
        owner.token,
    )
    bug, ui = (
        await label(api, owner, ws["id"], "bug", "#FF0000"),
        await label(api, owner, ws["id"], "ui"),
    )
    gone = await label(api, owner, ws["id"], "gone")
    t1 = await task(
        api,
        mate,
        web["id"],
        title="Login fails on Safari",
        description="Steps: open, click",
        assigneeId=leaver.id,
        labelIds=[bug["id"], ui["id"], gone["id"]],
        dueAt="2026-12-01T08:30:00.250000+00:00",
        priority="HIGH",
    )
    t2 = await task(
        api, owner, web["id"], title="Export CSV", status="IN_REVIEW", assigneeId=mate.id
    )
    t3 = await task(api, owner, web["id"], title="Deleted one")
    c_gone = await comment(api, mate, t3["id"], "On a task deleted since")
    await api.ok(
        UPDATE_TASK,
        {"input": {"id": t2["id"], "title": "Export CSV files", "expectedVersion": 1}},
        owner.token,
    )
    await api.ok(
        "mutation($id: ID!) { deleteTask(input: {id: $id}) { task { id } } }",
        {"id": t3["id"]},
        owner.token,
    )
    await api.ok(
        "mutation($id: ID!) { deleteLabel(input: {id: $id}) { deletedLabelId } }",
        {"id": gone["id"]},
        owner.token,
    )
    c1 = await comment(api, mate, t1["id"], "First")
    await comment(api, owner, t1["id"], "Second 'quoted' \"text\" \\ and ünïcode")
    c3 = await comment(api, mate, t1["id"], "Third")
    await api.ok(
        "mutation($id: ID!) { deleteComment(input: {id: $id}) { deletedCommentId } }",
        {"id": c3["id"]},
        mate.token,
    )
    # The leaver leaves: their tasks keep them as assignee, but they are no longer visible.
    await api.ok(
        "mutation($w: ID!, $u: ID!) { removeMember(input: {workspaceId: $w, userId: $u}) { removedUserId } }",
        {"w": ws["id"], "u": leaver.id},
        leaver.token,
    )
    # ... and is a member elsewhere: still no workspace shared with anyone here.
    await api.workspace(leaver, "Leaver's own")
    await bulk_tasks(db, old["id"], ws["id"], 40, [owner.id, mate.id], [bug["id"], ui["id"]])
    stranger = await api.register("stranger")
    theirs = await api.workspace(stranger, "Elsewhere")
    their_project = await project(api, stranger, theirs["id"], "ZZZ")
    history = await api.ok(
        "query($id: ID!) { node(id: $id) { ... on Task { history(first: 1) { nodes { id } } } } }",
        {"id": t1["id"]},
        owner.token,
    )
    return {
        "event": history["node"]["history"]["nodes"][0]["id"],
        "owner": owner,
        "mate": mate,
        "viewer": viewer,
        "ws": ws,
        "other": other,
        "web": web,
        "old": old,
        "bug": bug,
        "ui": ui,
        "t1": t1,
        "t2": t2,
        "t3": t3,
        "c1": c1,
        "c_gone": c_gone,
        "their_project": their_project,
        "leaver": leaver,
    }


# Compiled, with a role check that refuses the roles below ADMIN: the resolvers answer them.
REFUSED = "refused"


def corpus(w: dict[str, Any]) -> list[tuple[str, dict[str, Any], bool | str]]:
    """(query, variables, answered by the fast path: True, False, or REFUSED)."""
    ops: list[tuple[str, dict[str, Any], bool | str]] = [
        ("{ __typename viewer { __typename id email displayName createdAt } }", {}, True),
        (
            "{ workspaces(first: 1) { totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { id name slug createdAt viewerRole } } } }",
            {},
            True,
        ),
        (
            "query($s: String!) { workspace(slug: $s) { id name viewerRole members(first: 2) { totalCount "
            "pageInfo { hasNextPage endCursor } nodes { role createdAt user { id email displayName } } } "
            "labels { totalCount nodes { name color } } projects(includeArchived: true) { totalCount nodes { key archivedAt } } "
            'active: projects { nodes { key } } project(key: "web") { key tasks { totalCount } } missing: project(key: "NOPE") { key } } }',
            {"s": w["ws"]["slug"]},
            True,
        ),
        ('{ workspace(slug: "no-such-workspace") { id } }', {}, True),
        (
            "query($id: ID!) { node(id: $id) { ...T } } fragment T on Task { "
            + TASK_ALL
            + " comments(first: 1) { totalCount pageInfo { hasNextPage endCursor } nodes { id body createdAt updatedAt version author { displayName } } } }",
            {"id": w["t1"]["id"]},
            True,
        ),
        (
            "query($id: ID!) { a: node(id: $id) { id ... on Task { t: title, n: number } } b: node(id: $id) { __typename } }",
            {"id": w["t2"]["id"]},
            True,
        ),
        # nodes: in the order of ids, null for unknown, foreign and (for some roles) deleted ones.
        (
            "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id ... on Task { title deletedAt } "
            "... on Project { key } ... on User { displayName } ... on Label { name } } }",
            {
                "ids": [
                    w["t1"]["id"],
                    w["web"]["id"],
                    w["mate"].id,
                    "not-an-id",
                    w["their_project"]["id"],
                    w["t3"]["id"],
                    w["bug"]["id"],
                    w["leaver"].id,
                    w["c_gone"]["id"],
                    w["t1"]["id"],
                ]
            },
            True,
        ),
        ("{ nodes(ids: []) { id } }", {}, True),
        (
            "query($a: ID!, $b: ID!) { nodes(ids: [$a, $b]) { id ...P } } fragment P on Project { name tasks(first: 2) { totalCount nodes { number } } }",
            {"a": w["old"]["id"], "b": w["t2"]["id"]},
            True,
        ),
        (
            "query($id: ID!) { node(id: $id) { id ... on Label { name color createdAt } ... on Comment { body } ... on User { displayName } ... on Workspace { slug } ... on Project { key } } }",
            {"id": w["bug"]["id"]},
            True,
        ),
        (
            "query($id: ID!) { node(id: $id) { id ... on Comment { body author { email } } } }",
            {"id": w["c1"]["id"]},
            True,
        ),
        (
            "query($id: ID!) { node(id: $id) { id ... on User { email displayName } } }",
            {"id": w["mate"].id},
            True,
        ),
        ("query($id: ID!) { node(id: $id) { id } }", {"id": w["leaver"].id}, True),
        ("query($id: ID!) { node(id: $id) { id } }", {"id": w["their_project"]["id"]}, True),
        ("query($id: ID!) { node(id: $id) { id } }", {"id": "not-an-id"}, True),
        (
            "query($id: ID!) { node(id: $id) { id ... on Task { deletedAt } } }",
            {"id": w["t3"]["id"]},
            True,
        ),
        # Comments follow their task: a deleted task's only for those who may see deleted tasks.
        (
            "query($id: ID!) { node(id: $id) { id ... on Comment { body } } }",
            {"id": w["c_gone"]["id"]},
            True,
        ),
        (
            "query($id: ID!) { node(id: $id) { id ... on Task { comments { totalCount nodes { body } } } } }",
            {"id": w["t3"]["id"]},
            True,
        ),
        (
            "query($id: ID!) { node(id: $id) { ... on Project { workspace { id viewerRole } } } }",
            {"id": w["web"]["id"]},
            True,
        ),
        # Handled by the resolvers: invalid arguments.
        (
            "query($id: ID!) { node(id: $id) { ... on Project { tasks(first: 101) { totalCount } } } }",
            {"id": w["web"]["id"]},
            False,
        ),
        (
            'query($id: ID!) { node(id: $id) { ... on Project { tasks(after: "bogus") { totalCount } } } }',
            {"id": w["web"]["id"]},
            False,
        ),
        # Role checks compile; where one fails, the resolvers answer with the error (REFUSED).
        (
            "query($id: ID!) { node(id: $id) { ... on Project { tasks(filter: {includeDeleted: true}) { totalCount nodes { identifier deletedAt } } } } }",
            {"id": w["web"]["id"]},
            REFUSED,
        ),
        (
            "query($s: String!) { workspace(slug: $s) { id auditEvents(first: 5) { totalCount "
            "pageInfo { hasNextPage endCursor } edges { cursor node { __typename id action entityType entityId at changes actor { displayName } } } } } }",
            {"s": w["ws"]["slug"]},
            REFUSED,
        ),
        (
            "{ workspaces { nodes { slug auditEvents(first: 2) { nodes { action } } } } }",
            {},
            REFUSED,
        ),
        # History, and audit events by id (visible with the audit trail only).
        (
            "query($id: ID!) { node(id: $id) { ... on Task { history { totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } "
            "nodes { __typename id action entityType entityId at changes actor { id displayName } } } } } }",
            {"id": w["t1"]["id"]},
            True,
        ),
        (
            "query($id: ID!) { node(id: $id) { ... on Task { history(first: 1) { edges { cursor node { action } } } } } }",
            {"id": w["t1"]["id"]},
            True,
        ),
        (
            "query($id: ID!) { node(id: $id) { __typename id ... on AuditEvent { action entityId } } }",
            {"id": w["event"]},
            True,
        ),
        # @include / @skip on fields, inline fragments and fragment spreads, literal and variable.
        (
            "{ viewer { id @include(if: true) email @include(if: false) "
            "displayName @skip(if: true) createdAt @skip(if: false) } }",
            {},
            True,
        ),
    ]
    include_skip = (
        "query($id: ID!, $yes: Boolean!, $no: Boolean!, $maybe: Boolean = true) { node(id: $id) { id "
        "taskId: id @skip(if: $yes) "
        "... on Task @include(if: $yes) { title number @skip(if: $no) } "
        "... on Task @include(if: $no) { description } "
        "... on Task @skip(if: $yes) { status } "
        "... @skip(if: $no) { __typename } "
        "...Due @include(if: $maybe) ...Prio @include(if: false) ...Made @skip(if: $no) ...Upd @skip(if: true) "
        "... on Task { identifier @include(if: $no) @skip(if: $no) "
        "version @include(if: $yes) @skip(if: $yes) "
        "deletedAt @include(if: $yes) @skip(if: $no) "
        "labels { name @include(if: $no) color } "
        "project { key @skip(if: $yes) name @include(if: $yes) } } } } "
        "fragment Due on Task { dueAt } fragment Prio on Task { priority } "
        "fragment Made on Task { createdAt } fragment Upd on Task { updatedAt }"
    )
    for yes, no, maybe in ((True, False, None), (False, True, False), (True, False, False)):
        variables = {"id": w["t1"]["id"], "yes": yes, "no": no}
        if maybe is not None:
            variables["maybe"] = maybe
        ops.append((include_skip, variables, True))
    ops += []
    board = (
        "query($id: ID!, $first: Int, $after: String, $last: Int, $before: String, $order: TaskOrder, $filter: TaskFilter) { node(id: $id) { ... on Project { tasks(first: $first, after: $after, last: $last, before: $before, orderBy: $order, filter: $filter) { "
        + CONNECTION
        + " nodes { identifier } } } } }"
    )
    for field in ("CREATED_AT", "UPDATED_AT", "DUE_AT", "PRIORITY", "NUMBER"):
        for direction in ("ASC", "DESC"):
            order = {"field": field, "direction": direction}
            ops.append((board, {"id": w["old"]["id"], "first": 7, "order": order}, True))
            ops.append((board, {"id": w["old"]["id"], "last": 6, "order": order}, True))
    # An empty page has no cursors, whatever its keys (DUE_AT's may be null).
    nothing = {"search": "nowhere-to-be-found"}
    for page in ({"first": 5}, {"last": 5}):
        order = {"field": "DUE_AT", "direction": "ASC"}
        ops.append((board, {"id": w["old"]["id"], **page, "order": order, "filter": nothing}, True))
    for f in (
        {"status": ["TODO", "IN_REVIEW"]},
        {"assigneeId": w["mate"].id},
        {"unassigned": True},
        {"unassigned": False},
        {"labelIds": [w["bug"]["id"], w["ui"]["id"]]},
        {"dueBefore": "2026-12-02T00:00:00Z"},
        {"search": "safari -csv"},
        {"search": "export or login"},
        {"status": []},
    ):
        ops.append((board, {"id": w["web"]["id"], "filter": f}, True))
    # Board columns: totalCount from the task counters (the deleted task of WEB is not counted).
    by_priority = {"field": "PRIORITY", "direction": "DESC"}
    for project_key in ("old", "web"):
        for f in (
            {},
            {"status": ["TODO", "IN_PROGRESS"]},
            {"status": ["DONE"]},
            {"status": ["TODO"], "search": "login"},
        ):
            variables = {"id": w[project_key]["id"], "first": 50, "order": by_priority}
            ops.append((board, {**variables, "filter": f}, True))
    return ops


async def test_fast_path_answers_like_the_resolvers(
    api: Api, resolver_api: Api, db: DbSession, sql_counter: SqlCounter
) -> None:
    w = await world(api, db)
    accounts: list[Account] = [w["owner"], w["mate"], w["viewer"]]
    for query, variables, compiled in corpus(w):
        for account in accounts:
            sql_counter.reset()
            same_id = {"x-request-id": f"compare-{account.id[:8]}"}  # errors carry it
            fast = await api.post(query, variables, account.token, same_id)
            fast_statements = sql_counter.count
            slow = await resolver_api.post(query, variables, account.token, same_id)
            assert fast == slow, (query, variables, account.email)
            if variables.get("id") == w["c_gone"]["id"]:  # the comment of a deleted task
                seen = fast["data"]["node"] is not None
                assert seen == (account is w["owner"]), (account.email, fast)
            if compiled is True or (compiled == REFUSED and account is w["owner"]):
                assert fast_statements == 1, (query, sql_counter.statements)
            elif compiled == REFUSED:  # the compiled statement, then the resolvers' answer
                assert fast_statements > 1, (query, sql_counter.statements)
                codes = {e["extensions"]["code"] for e in fast["errors"]}
                assert codes == {"FORBIDDEN"}, (query, account.email, fast)


async def test_cursors_from_either_path_work_in_the_other(
    api: Api, resolver_api: Api, db: DbSession
) -> None:
    w = await world(api, db)
    board = "query($id: ID!, $after: String, $o: TaskOrder) { node(id: $id) { ... on Project { tasks(first: 5, after: $after, orderBy: $o) { pageInfo { endCursor hasNextPage } nodes { number } } } } }"
    token = w["owner"].token
    for order in (
        {"field": "DUE_AT", "direction": "DESC"},
        {"field": "PRIORITY", "direction": "ASC"},
    ):
        seen: list[int] = []
        after = None
        clients = [api, resolver_api]
        step = 0
        while True:
            page = (
                await clients[step % 2].ok(
                    board, {"id": w["old"]["id"], "after": after, "o": order}, token
                )
            )["node"]["tasks"]
            seen += [n["number"] for n in page["nodes"]]
            step += 1
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert sorted(seen) == list(range(1, 41))


@pytest.mark.parametrize("role", ["owner", "viewer"])
async def test_plan_cache_keeps_viewers_apart(api: Api, db: DbSession, role: str) -> None:
    w = await world(api, db)
    query = "query($id: ID!) { node(id: $id) { id } }"
    stranger = await api.register("outsider")
    seen_by_member = await api.ok(query, {"id": w["web"]["id"]}, w[role].token)
    seen_by_stranger = await api.ok(query, {"id": w["web"]["id"]}, stranger.token)
    assert seen_by_member["node"] == {"id": w["web"]["id"]}
    assert seen_by_stranger["node"] is None


@pytest.fixture
def executions(monkeypatch: pytest.MonkeyPatch) -> list[None]:
    """One entry per run of the executor (Schema.execute): answers from a cached plan skip it."""
    from graphql_api.schema import Schema

    calls: list[None] = []
    original = Schema.execute

    async def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(None)
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(Schema, "execute", counting)
    return calls


async def test_a_repeated_query_is_answered_from_its_plan(
    api: Api, db: DbSession, executions: list[None]
) -> None:
    w = await world(api, db)
    executions.clear()
    query = "query($id: ID!) { node(id: $id) { ... on Task { title labels { name } } } }"
    responses = [
        await api.http.post(
            "/graphql",
            json={"query": query, "variables": {"id": w["t1"]["id"]}},
            headers={"authorization": f"Bearer {w['mate'].token}"},
        )
        for _ in range(3)
    ]
    assert len(executions) == 1  # the executor ran once; the plan answered the rest
    assert all(r.json() == responses[0].json() for r in responses)
    assert all(r.headers["content-type"] == "application/json" for r in responses)
    assert responses[0].json() == {
        "data": {
            "node": {"title": "Login fails on Safari", "labels": [{"name": "bug"}, {"name": "ui"}]}
        },
        "extensions": {"cost": {"requestedNodes": 0, "points": 1}},
    }
    # Both paths charge the rate limit and say so.
    remaining = [int(r.headers["x-ratelimit-remaining"]) for r in responses]
    assert remaining == sorted(remaining, reverse=True) and remaining[0] > remaining[-1]
    # Another viewer, or a bad token, never gets the cached answer.
    outsider = await api.register()
    assert (await api.ok(query, {"id": w["t1"]["id"]}, outsider.token))["node"] is None
    bad = await api.post(query, {"id": w["t1"]["id"]}, w["mate"].token + "x")
    assert bad["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


BOARD = """query($id: ID!, $filter: TaskFilter) { node(id: $id) { ... on Project {
  tasks(first: 5, orderBy: {field: PRIORITY, direction: DESC}, filter: $filter) { %s } } } }"""
PAGE = "pageInfo { hasNextPage hasPreviousPage endCursor } nodes { identifier status }"
# The only count the fast path's statement may hold: over the page's rows (size + 1 fetched).
COUNT_OF_PAGE = re.compile(r"count\(\*\) > 5\b")


@pytest.mark.parametrize("fast", [True, False])
async def test_board_counts_read_the_counters_and_pages_count_nothing(
    api: Api, resolver_api: Api, db: DbSession, sql_counter: SqlCounter, fast: bool
) -> None:
    w = await world(api, db)
    path = api if fast else resolver_api
    columns = {"status": ["TODO", "IN_PROGRESS"]}
    for selection, counted in (("totalCount " + PAGE, True), (PAGE, False), ("totalCount", True)):
        sql_counter.reset()
        body = await path.post(
            BOARD % selection, {"id": w["old"]["id"], "filter": columns}, w["owner"].token
        )
        assert "errors" not in body, body
        sql = "\n".join(sql_counter.statements)
        assert ("FROM project_task_counts" in sql) == counted, sql
        assert "count(" not in COUNT_OF_PAGE.sub("", sql), sql  # no count(*) scan of tasks


async def test_a_refused_plan_hands_every_repetition_to_the_resolvers(
    api: Api, db: DbSession, executions: list[None], sql_counter: SqlCounter
) -> None:
    """A cached plan whose role check fails (a MEMBER asking for the audit trail) is answered
    by the executor every time, with FORBIDDEN; promote the member and the same plan answers."""
    w = await world(api, db)
    executions.clear()
    query = (
        "query($s: String!) { workspace(slug: $s) { slug auditEvents(first: 1) { totalCount } } }"
    )
    variables = {"s": w["ws"]["slug"]}
    for _ in range(3):
        sql_counter.reset()
        refused = await api.post(query, variables, w["mate"].token)
        # The compiled statement runs once (the front's, or the executor's the first time).
        tried = [q for q in sql_counter.statements if "graphql_refused" in q]
        assert len(tried) == 1, sql_counter.statements
        assert refused["data"] == {"workspace": None}, refused
        assert [e["extensions"]["code"] for e in refused["errors"]] == ["FORBIDDEN"]
    assert len(executions) == 3
    await api.ok(
        "mutation($w: ID!, $u: ID!) { changeMemberRole(input: {workspaceId: $w, userId: $u, role: ADMIN}) { userErrors { code } } }",
        {"w": w["ws"]["id"], "u": w["mate"].id},
        w["owner"].token,
    )
    executions.clear()
    allowed = await api.ok(query, variables, w["mate"].token)
    assert allowed["workspace"]["auditEvents"]["totalCount"] > 0
    assert not executions  # answered from the same plan, now that the role allows it
