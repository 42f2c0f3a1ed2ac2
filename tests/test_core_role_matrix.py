"""Projects, labels, tasks and comments: every mutation, for every role and for outsiders.

Expectations come from the policy table: allowed -> OK; a member without the right -> FORBIDDEN;
someone of another workspace -> NOT_FOUND.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from db.models import Role
from graphql_api import policy
from graphql_api.policy import Action
from tests.gql import Account, Api, comment, label, project, task


@dataclass
class World:
    ws: dict[str, Any]
    project: dict[str, Any]
    label: dict[str, Any]
    task: dict[str, Any]
    comment: dict[str, Any]


Op = Callable[[World], tuple[str, str, dict[str, Any]]]  # (mutation, query, variables)


def op(mutation: str, input_type: str) -> Callable[[Callable[[World], dict[str, Any]]], Op]:
    def wrap(make_input: Callable[[World], dict[str, Any]]) -> Op:
        def build(w: World) -> tuple[str, str, dict[str, Any]]:
            query = f"mutation($i: {input_type}!) {{ {mutation}(input: $i) {{ userErrors {{ code }} }} }}"
            return mutation, query, {"i": make_input(w)}

        return build

    return wrap


OPS: dict[str, tuple[Action, Op, str | None]] = {
    # name: (the action the policy must allow, the mutation, what the owner prepares first)
    "createProject": (
        Action.MANAGE_PROJECTS,
        op("createProject", "CreateProjectInput")(
            lambda w: {"workspaceId": w.ws["id"], "key": "NEW", "name": "n"}
        ),
        None,
    ),
    "updateProject": (
        Action.MANAGE_PROJECTS,
        op("updateProject", "UpdateProjectInput")(lambda w: {"id": w.project["id"], "name": "n"}),
        None,
    ),
    "archiveProject": (
        Action.MANAGE_PROJECTS,
        op("archiveProject", "ArchiveProjectInput")(lambda w: {"id": w.project["id"]}),
        None,
    ),
    "unarchiveProject": (
        Action.MANAGE_PROJECTS,
        op("unarchiveProject", "UnarchiveProjectInput")(lambda w: {"id": w.project["id"]}),
        "archive",
    ),
    "createLabel": (
        Action.WRITE_LABELS,
        op("createLabel", "CreateLabelInput")(
            lambda w: {"workspaceId": w.ws["id"], "name": "new", "color": "#000000"}
        ),
        None,
    ),
    "updateLabel": (
        Action.WRITE_LABELS,
        op("updateLabel", "UpdateLabelInput")(lambda w: {"id": w.label["id"], "name": "renamed"}),
        None,
    ),
    "deleteLabel": (
        Action.WRITE_LABELS,
        op("deleteLabel", "DeleteLabelInput")(lambda w: {"id": w.label["id"]}),
        None,
    ),
    "createTask": (
        Action.WRITE_TASKS,
        op("createTask", "CreateTaskInput")(lambda w: {"projectId": w.project["id"], "title": "t"}),
        None,
    ),
    "updateTask": (
        Action.WRITE_TASKS,
        op("updateTask", "UpdateTaskInput")(lambda w: {"id": w.task["id"], "title": "t2"}),
        None,
    ),
    "deleteTask": (
        Action.WRITE_TASKS,
        op("deleteTask", "DeleteTaskInput")(lambda w: {"id": w.task["id"]}),
        None,
    ),
    "restoreTask": (
        Action.RESTORE_TASKS,
        op("restoreTask", "RestoreTaskInput")(lambda w: {"id": w.task["id"]}),
        "delete task",
    ),
    "createComment": (
        Action.WRITE_COMMENTS,
        op("createComment", "CreateCommentInput")(lambda w: {"taskId": w.task["id"], "body": "hi"}),
        None,
    ),
    "deleteComment (someone else's)": (
        Action.MODERATE_COMMENTS,
        op("deleteComment", "DeleteCommentInput")(lambda w: {"id": w.comment["id"]}),
        None,
    ),
}

PREPARE: dict[str, Callable[[Api, Account, World], Awaitable[Any]]] = {
    "archive": lambda api, o, w: api.ok(
        "mutation($id: ID!) { archiveProject(input: {id: $id}) { project { id } } }",
        {"id": w.project["id"]},
        o.token,
    ),
    "delete task": lambda api, o, w: api.ok(
        "mutation($id: ID!) { deleteTask(input: {id: $id}) { task { id } } }",
        {"id": w.task["id"]},
        o.token,
    ),
}


async def world(api: Api, owner: Account, actor: Account, role: Role | None) -> World:
    ws = await api.workspace(owner)
    if role is not None:
        await api.add(owner, ws["id"], actor, role.value)
    proj = await project(api, owner, ws["id"])
    lab = await label(api, owner, ws["id"], "l")
    t = await task(api, owner, proj["id"])
    return World(ws, proj, lab, t, await comment(api, owner, t["id"]))


def expected(role: Role | None, action: Action, *, deleted_target: bool = False) -> str:
    # A deleted task does not exist for a role that may not see deleted tasks.
    if role is None or (deleted_target and not policy.sees_task(role, deleted=True)):
        return "NOT_FOUND"
    return "OK" if policy.can(role, action) else "FORBIDDEN"


@pytest.mark.parametrize("role", [*Role, None], ids=lambda r: r.value if r else "OUTSIDER")
async def test_core_mutations_follow_the_policy(api: Api, role: Role | None) -> None:
    owner, actor = await api.register(), await api.register()
    if role is None:
        await api.workspace(actor)  # a member of something, just not of this
    outcomes, wanted = {}, {}
    for name, (action, build, prepare) in OPS.items():
        w = await world(api, owner, actor, role)
        if prepare:
            await PREPARE[prepare](api, owner, w)
        mutation, query, variables = build(w)
        body = await api.post(query, variables, actor.token)
        assert "errors" not in body, body
        errors = body["data"][mutation]["userErrors"]
        outcomes[name] = errors[0]["code"] if errors else "OK"
        wanted[name] = expected(role, action, deleted_target=prepare == "delete task")
    assert outcomes == wanted


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
async def test_guarded_reads_follow_the_policy(api: Api, role: Role) -> None:
    owner, actor = await api.register(), await api.register()
    w = await world(api, owner, actor, role)
    deleted = await api.post(
        "query($id: ID!) { node(id: $id) { ... on Project { tasks(filter: {includeDeleted: true}) { totalCount } } } }",
        {"id": w.project["id"]},
        actor.token,
    )
    audit = await api.post(
        "query($s: String!) { workspace(slug: $s) { auditEvents { totalCount } } }",
        {"s": w.ws["slug"]},
        actor.token,
    )
    for body, action in ((deleted, Action.READ_DELETED), (audit, Action.READ_AUDIT)):
        code = body["errors"][0]["extensions"]["code"] if body.get("errors") else "OK"
        assert code == expected(role, action), (action, body)


DELETED_TASK_COMMENT_READS = """
query($c: ID!, $t: ID!) {
  node(id: $c) { id }
  nodes(ids: [$c]) { id }
  task: node(id: $t) { ... on Task { comments { totalCount nodes { id } } } }
}"""
UPDATE_COMMENT = "mutation($i: UpdateCommentInput!) { updateComment(input: $i) { comment { body } userErrors { code } } }"
DELETE_COMMENT = (
    "mutation($i: DeleteCommentInput!) { deleteComment(input: $i) { userErrors { code } } }"
)
TASK_MUTATION = "mutation($id: ID!) {{ {0}(input: {{id: $id}}) {{ userErrors {{ code }} }} }}"


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
async def test_comments_follow_their_deleted_task(api: Api, role: Role) -> None:
    owner, actor = await api.register(), await api.register()
    w = await world(api, owner, actor, role)
    # The actor's own comment where their role lets them write one, else the owner's.
    author = actor if policy.can(role, Action.WRITE_COMMENTS) else owner
    mine = await comment(api, author, w.task["id"], "before the deletion")
    await api.ok(TASK_MUTATION.format("deleteTask"), {"id": w.task["id"]}, owner.token)

    # Readable only by those who may see deleted tasks, however it is asked for.
    reads = await api.ok(
        DELETED_TASK_COMMENT_READS, {"c": mine["id"], "t": w.task["id"]}, actor.token
    )
    if policy.sees_task(role, deleted=True):
        assert reads["node"] == {"id": mine["id"]} and reads["nodes"] == [{"id": mine["id"]}]
        assert reads["task"]["comments"]["totalCount"] == 2
    else:
        assert reads == {"node": None, "nodes": [None], "task": None}

    # Frozen for everyone, the author and the admins included, until the task is restored.
    for mutation, query, variables in (
        ("updateComment", UPDATE_COMMENT, {"i": {"id": mine["id"], "body": "edited"}}),
        ("deleteComment", DELETE_COMMENT, {"i": {"id": mine["id"]}}),
        ("deleteComment", DELETE_COMMENT, {"i": {"id": w.comment["id"]}}),
    ):
        body = await api.post(query, variables, actor.token)
        assert [e["code"] for e in body["data"][mutation]["userErrors"]] == ["NOT_FOUND"], (
            mutation,
            body,
        )

    await api.ok(TASK_MUTATION.format("restoreTask"), {"id": w.task["id"]}, owner.token)
    body = await api.post(UPDATE_COMMENT, {"i": {"id": mine["id"], "body": "edited"}}, author.token)
    assert body["data"]["updateComment"] == {"comment": {"body": "edited"}, "userErrors": []}


async def test_a_member_cannot_restore_what_an_admin_deleted(api: Api) -> None:
    owner, admin, member = await api.register(), await api.register(), await api.register()
    w = await world(api, owner, member, Role.MEMBER)
    await api.add(owner, w.ws["id"], admin, Role.ADMIN.value)
    await api.ok(TASK_MUTATION.format("deleteTask"), {"id": w.task["id"]}, admin.token)
    restore = TASK_MUTATION.format("restoreTask")
    refused = await api.post(restore, {"id": w.task["id"]}, member.token)
    assert refused["data"]["restoreTask"]["userErrors"] == [{"code": "NOT_FOUND"}]
    assert (await api.post(restore, {"id": w.task["id"]}, admin.token))["data"]["restoreTask"][
        "userErrors"
    ] == []
    # Restored: the member sees it again.
    node = "query($id: ID!) { node(id: $id) { id } }"
    assert (await api.ok(node, {"id": w.task["id"]}, member.token))["node"] == {"id": w.task["id"]}
