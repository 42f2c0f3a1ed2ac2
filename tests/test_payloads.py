"""Compiled mutation payloads answer exactly as the resolvers do.

Each mutation runs twice on the same data, through the fast path and with it off, each time in a
SAVEPOINT rolled back afterwards, so both start from the same state. The two answers must be
identical, but for the id of an object the mutation creates (a new one each time), and a write
the fast path claims must have read its payload with one statement.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from graphql import FieldNode, OperationDefinitionNode, parse
from sqlalchemy.ext.asyncio import AsyncConnection

from db.session import DbSession
from tests.conftest import SqlCounter
from tests.gql import Account, Api
from tests.test_fast_path import world

NOW = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


class _Frozen(datetime):
    @classmethod
    def now(cls, tz: Any = None) -> Any:
        return NOW


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Python-side timestamps of writes (updatedAt, deletedAt, archivedAt) are the same in
    both runs; the database's now() is the test transaction's start already."""
    for module in (
        "graphql_api.resolvers.tasks",
        "graphql_api.resolvers.projects",
        "db.repositories.base",
    ):
        monkeypatch.setattr(f"{module}.datetime", _Frozen)


TASK = """
  __typename id number identifier title description status priority dueAt createdAt updatedAt
  deletedAt version
  assignee { id email displayName createdAt __typename }
  createdBy { displayName }
  labels { id name color createdAt }
  project { id key name archivedAt version workspace { slug name viewerRole } }
"""
COMMENTS = """
  comments(first: 2) {
    totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { body author { displayName } } }
  }
"""
ERRORS = "userErrors { code message field __typename }"

CREATE_TASK = f"""
mutation Create($input: CreateTaskInput!, $withLabels: Boolean!, $lean: Boolean = false) {{
  createTask(input: $input) {{
    __typename
    made: task {{ ...T labels @include(if: $withLabels) {{ name }} }}
    task @skip(if: $lean) {{ identifier {COMMENTS} }}
    {ERRORS}
  }}
}}
fragment T on Task {{ {TASK} ... on Node {{ nodeId: id }} }}
"""
UPDATE_TASK = f"""
mutation($input: UpdateTaskInput!) {{
  updateTask(input: $input) {{ {ERRORS} task {{ {TASK} {COMMENTS} }} }}
}}"""
DELETE_TASK = f"""
mutation($id: ID!, $comments: Boolean!) {{
  deleteTask(input: {{id: $id}}) {{ task {{ {TASK} ... @include(if: $comments) {{ {COMMENTS} }} }} {ERRORS} }}
}}"""
RESTORE_TASK = f"""
mutation($id: ID!) {{ restoreTask(input: {{id: $id}}) {{ task {{ {TASK} {COMMENTS} }} {ERRORS} }} }}"""
CREATE_COMMENT = f"""
mutation($input: CreateCommentInput!) {{
  createComment(input: $input) {{
    comment {{ __typename id body createdAt updatedAt version author {{ id displayName }} }}
    {ERRORS}
  }}
}}"""
UPDATE_COMMENT = f"""
mutation($input: UpdateCommentInput!) {{
  updateComment(input: $input) {{ comment {{ id body version updatedAt }} {ERRORS} }}
}}"""
PROJECT = """
  id key name description archivedAt createdAt updatedAt version
  workspace { id slug viewerRole }
  tasks(first: 3, orderBy: {field: NUMBER, direction: DESC}) {
    totalCount pageInfo { hasNextPage endCursor } nodes { number title assignee { displayName } }
  }
  open: tasks(first: 2, filter: {status: [TODO]}) { totalCount nodes { identifier } }
"""
CREATE_PROJECT = f"""
mutation($input: CreateProjectInput!) {{
  createProject(input: $input) {{ project {{ {PROJECT} }} {ERRORS} }}
}}"""
UPDATE_PROJECT = f"""
mutation($input: UpdateProjectInput!) {{
  updateProject(input: $input) {{ project {{ {PROJECT} }} {ERRORS} }}
}}"""
ARCHIVE_PROJECT = f"""
mutation($id: ID!) {{
  archiveProject(input: {{id: $id}}) {{ project {{ {PROJECT} }} {ERRORS} }}
  unarchiveProject(input: {{id: $id}}) {{ __typename again: project {{ archivedAt version }} }}
}}"""
CREATE_LABEL = f"""
mutation($input: CreateLabelInput!) {{
  createLabel(input: $input) {{ label {{ __typename id name color createdAt }} {ERRORS} }}
}}"""
UPDATE_LABEL = f"""
mutation($input: UpdateLabelInput!) {{
  updateLabel(input: $input) {{ label {{ id name color }} {ERRORS} }}
}}"""
CREATE_WORKSPACE = f"""
mutation($input: CreateWorkspaceInput!) {{
  createWorkspace(input: $input) {{
    workspace {{ id name slug viewerRole members {{ totalCount nodes {{ role user {{ email }} }} }}
                projects {{ totalCount }} labels {{ totalCount }} }}
    {ERRORS}
  }}
}}"""
AUDIT_TRAIL = f"""
mutation($input: UpdateTaskInput!) {{
  updateTask(input: $input) {{
    task {{ history(first: 2) {{ totalCount nodes {{ action changes }} }}
            project {{ workspace {{ auditEvents(first: 1) {{ nodes {{ action }} }} }} }} }}
    {ERRORS}
  }}
}}"""
TWO_FIELDS = f"""
mutation($p: ID!, $t: ID!) {{
  first: createTask(input: {{projectId: $p, title: "One"}}) {{ task {{ number identifier }} }}
  second: createTask(input: {{projectId: $p, title: "Two"}}) {{ task {{ number title }} }}
  update: updateTask(input: {{id: $t, priority: URGENT}}) {{ task {{ {TASK} }} {ERRORS} }}
  bad: updateTask(input: {{id: $t, expectedVersion: 1}}) {{ task {{ id }} {ERRORS} }}
}}"""


def cases(w: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(name, mutation, variables)."""
    full = {
        "projectId": w["web"]["id"],
        "title": "Ship it",
        "description": "All of it",
        "status": "IN_PROGRESS",
        "priority": "HIGH",
        "assigneeId": w["mate"].id,
        "labelIds": [w["ui"]["id"], w["bug"]["id"]],
        "dueAt": "2031-05-06T07:08:09.123456+00:00",
    }
    return [
        ("createTask", CREATE_TASK, {"input": full, "withLabels": True}),
        ("createTask", CREATE_TASK, {"input": {**full, "assigneeId": None}, "withLabels": False}),
        ("createTask", CREATE_TASK, {"input": {**full, "labelIds": []}, "withLabels": True, "lean": True}),
        ("createTask", CREATE_TASK, {"input": {**full, "projectId": w["old"]["id"]}, "withLabels": True}),
        ("createTask", CREATE_TASK, {"input": {**full, "assigneeId": w["leaver"].id}, "withLabels": True}),
        ("updateTask", UPDATE_TASK, {"input": {"id": w["t1"]["id"], "title": "Renamed", "assigneeId": None, "labelIds": [w["ui"]["id"]], "expectedVersion": 1}}),
        ("updateTask", UPDATE_TASK, {"input": {"id": w["t2"]["id"], "status": "DONE"}}),
        ("updateTask", UPDATE_TASK, {"input": {"id": w["t2"]["id"]}}),
        ("updateTask", UPDATE_TASK, {"input": {"id": w["t1"]["id"], "expectedVersion": 99}}),
        ("deleteTask", DELETE_TASK, {"id": w["t1"]["id"], "comments": False}),
        ("deleteTask", DELETE_TASK, {"id": w["t1"]["id"], "comments": True}),
        ("restoreTask", RESTORE_TASK, {"id": w["t3"]["id"]}),
        ("restoreTask", RESTORE_TASK, {"id": w["t2"]["id"]}),
        ("createComment", CREATE_COMMENT, {"input": {"taskId": w["t1"]["id"], "body": "Ünïcode 'quotes' \\"}}),
        ("createComment", CREATE_COMMENT, {"input": {"taskId": w["t3"]["id"], "body": "On a deleted task"}}),
        ("updateComment", UPDATE_COMMENT, {"input": {"id": w["c1"]["id"], "body": "Edited"}}),
        ("createProject", CREATE_PROJECT, {"input": {"workspaceId": w["ws"]["id"], "key": "NEW", "name": "New", "description": "d"}}),
        ("createProject", CREATE_PROJECT, {"input": {"workspaceId": w["ws"]["id"], "key": "WEB", "name": "Taken"}}),
        ("updateProject", UPDATE_PROJECT, {"input": {"id": w["web"]["id"], "name": "Web app", "description": None}}),
        ("updateProject", UPDATE_PROJECT, {"input": {"id": w["old"]["id"], "name": "Still old", "expectedVersion": 2}}),
        ("archiveProject", ARCHIVE_PROJECT, {"id": w["web"]["id"]}),
        ("createLabel", CREATE_LABEL, {"input": {"workspaceId": w["ws"]["id"], "name": "new", "color": "#abcdef"}}),
        ("createLabel", CREATE_LABEL, {"input": {"workspaceId": w["ws"]["id"], "name": "bug", "color": "#abcdef"}}),
        ("updateLabel", UPDATE_LABEL, {"input": {"id": w["bug"]["id"], "color": "#00ff00"}}),
        ("createWorkspace", CREATE_WORKSPACE, {"input": {"name": "Third", "slug": "third-ws"}}),
        ("auditTrail", AUDIT_TRAIL, {"input": {"id": w["t2"]["id"], "title": "Audited"}}),
        ("twoFields", TWO_FIELDS, {"p": w["web"]["id"], "t": w["t2"]["id"]}),
    ]  # fmt: skip


def _created_ids(answer: dict[str, Any]) -> list[str]:
    """The ids of the objects in the payloads, in order (a created one differs per run)."""
    found: list[str] = []
    for payload in (answer.get("data") or {}).values():
        for value in (payload or {}).values():
            if isinstance(value, dict) and isinstance(value.get("id"), str):
                found.append(value["id"])
    return found


async def _run(
    connection: AsyncConnection, api: Api, query: str, variables: dict[str, Any], account: Account
) -> dict[str, Any]:
    savepoint = await connection.begin_nested()
    try:
        headers = {"x-request-id": f"payload-{account.id[:8]}"}  # errors carry it
        return await api.post(query, variables, account.token, headers)
    finally:
        await savepoint.rollback()


def _field_names(query: str) -> dict[str, str]:
    """The root fields of a mutation by their response keys."""
    [operation] = parse(query).definitions[:1]
    assert isinstance(operation, OperationDefinitionNode)
    return {
        (f.alias or f.name).value: f.name.value
        for f in operation.selection_set.selections
        if isinstance(f, FieldNode)
    }


def _at_hand(field: str, payload: dict[str, Any]) -> bool:
    """A payload whose objects show columns and ids only (and createTask's identifier, which
    the mutation knows): the resolvers answer it from the objects, with no statement."""
    objects = [v for v in payload.values() if isinstance(v, dict)]
    return all(
        not isinstance(value, dict | list) and (key != "identifier" or field == "createTask")
        for obj in objects
        for key, value in obj.items()
    )


def _compiled(statements: list[str]) -> int:
    return sum(s.startswith("SELECT json_build_object(") for s in statements)


async def test_compiled_payloads_answer_like_the_resolvers(
    api: Api,
    resolver_api: Api,
    db: DbSession,
    connection: AsyncConnection,
    sql_counter: SqlCounter,
) -> None:
    w = await world(api, db)
    accounts: list[Account] = [w["owner"], w["mate"], w["viewer"]]
    compiled_fields: set[str] = set()
    at_hand: set[str] = set()
    for name, query, variables in cases(w):
        for account in accounts:
            sql_counter.reset()
            fast = await _run(connection, api, query, variables, account)
            reads = _compiled(sql_counter.statements)
            slow = await _run(connection, resolver_api, query, variables, account)
            assert _compiled(sql_counter.statements) == reads, "the resolver path compiles none"
            text = orjson.dumps(slow).decode()
            for mine, theirs in zip(_created_ids(fast), _created_ids(slow), strict=True):
                text = text.replace(theirs, mine)
            assert fast == orjson.loads(text), (name, variables, account.email)
            # Every successful payload with an object compiled, but where a role check may
            # refuse (auditEvents): the resolvers decide it, in the mutation's transaction;
            # and those whose selection is at hand, which cost no statement.
            fields = _field_names(query)
            succeeded = [
                p
                for alias, p in (fast.get("data") or {}).items()
                if p
                and not p.get("userErrors")
                and any(isinstance(v, dict) for v in p.values())
                and not _at_hand(fields[alias], p)
            ]
            if name != "auditTrail":
                assert reads == len(succeeded), (name, variables, account.email, fast)
            if reads:
                compiled_fields.add(name)
            if any(
                p and not p.get("userErrors") and _at_hand(fields[alias], p)
                for alias, p in (fast.get("data") or {}).items()
            ):
                at_hand.add(name)
    # Labels have columns only; a comment's payload here selects nothing else.
    assert at_hand >= {"twoFields", "updateComment", "createLabel", "updateLabel"}
    assert compiled_fields | at_hand >= {
        "createTask",
        "updateTask",
        "deleteTask",
        "restoreTask",
        "createComment",
        "updateComment",
        "createProject",
        "updateProject",
        "archiveProject",
        "createLabel",
        "updateLabel",
        "createWorkspace",
        "twoFields",
    }
