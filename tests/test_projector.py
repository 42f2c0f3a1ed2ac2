"""Task-event payloads written by the projector (events/projector.py) are byte for byte the ones
executing the selection gives (SharedTaskEvents.executed), over many selections and deliveries:
aliases, fragments, directives, __typename, every Task scalar, deleted tasks for each role, a
null assignee, a non-member actor. Where the projector cannot vouch for a payload it declines,
and the payload is executed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from itertools import product
from typing import Any

import pytest
from graphql import FieldNode, Visitor, parse, visit

from db import models
from graphql_api.context import Context
from graphql_api.events.execution_context import PerEventMemoExecutionContext
from graphql_api.events.group_execution import ROLE_DETERMINED, SharedTaskEvents
from graphql_api.events.loader import Delivery, LoadedEvent
from graphql_api.schema import schema
from tests.conftest import make_settings

TASK_SCALARS = (
    "id number title description status priority dueAt createdAt updatedAt deletedAt version"
)
USER = "id email displayName createdAt __typename"
PROJECT = "id key name description archivedAt createdAt updatedAt version __typename"
EVERYTHING = f"""subscription($w: ID!) {{
  taskEvents(workspaceId: $w) {{
    __typename kind taskId at actor {{ {USER} }}
    task {{
      __typename {TASK_SCALARS} identifier
      project {{ {PROJECT} }} assignee {{ {USER} }} createdBy {{ {USER} }}
    }}
  }}
}}"""
SELECTIONS: list[tuple[str, dict[str, Any]]] = [
    (EVERYTHING, {}),
    # Aliases, the same field twice (merged), fields in another order.
    (
        """subscription($w: ID!) { ev: taskEvents(workspaceId: $w) {
          t: task { n: number identifier title t2: title identifier }
          when: at k: kind kind task { status id }
          a1: actor { name: displayName } a2: actor { email id }
        } }""",
        {},
    ),
    # Named fragments, nested and repeated, inline fragments with and without a type condition,
    # on interfaces (Node) and on the object types themselves.
    (
        """subscription($w: ID!) { taskEvents(workspaceId: $w) {
          ...E task { ...T ... on Node { id __typename } } ... { at }
        } }
        fragment E on TaskEvent { kind task { ...T project { ... on Project { key } } } }
        fragment T on Task { title ... on Task { priority dueAt } assignee { ...U } }
        fragment U on User { displayName ... on Node { id } }""",
        {},
    ),
    # @include and @skip on fields, fragments and inline fragments, by variables and literals.
    (
        """subscription($w: ID!, $yes: Boolean!, $no: Boolean = false) {
          taskEvents(workspaceId: $w) {
            kind @skip(if: $yes) taskId @include(if: $yes) at @include(if: $no)
            task @include(if: $yes) {
              title @skip(if: $no) ...F @include(if: $no) ... @skip(if: false) { status }
              createdBy @include(if: true) { displayName email @skip(if: $yes) }
              identifier @include(if: $yes) @skip(if: $no)
            }
          }
        }
        fragment F on Task { description }""",
        {"yes": True},
    ),
    (
        """subscription($w: ID!, $yes: Boolean!) { taskEvents(workspaceId: $w) {
          __typename task @skip(if: $yes) { title } actor @include(if: $yes) { __typename }
        } }""",
        {"yes": False},
    ),
    ("subscription($w: ID!) { taskEvents(workspaceId: $w) { __typename } }", {}),
    (
        "subscription Named($w: ID!, $p: ID) { taskEvents(workspaceId: $w, projectId: $p) "
        "{ kind task { project { id } } } }",
        {"p": None},
    ),
]

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
WORKSPACE = uuid.uuid4()


def _user(name: str, microseconds: int = 0) -> models.User:
    return models.User(
        id=uuid.uuid4(),
        email=f"{name}@example.test",
        password_hash="x",
        display_name=name.title(),
        created_at=AT + timedelta(microseconds=microseconds),
        updated_at=AT,
    )


OWNER, ASSIGNEE, STRANGER = _user("owner", 123456), _user("assignee"), _user("stranger")
PROJECT_ROW = models.Project(
    id=uuid.uuid4(),
    workspace_id=WORKSPACE,
    key="WEB",
    name='Web "site"',
    description=None,
    archived_at=None,
    created_at=AT,
    updated_at=AT + timedelta(seconds=1, microseconds=5),
    version=3,
)


def _task(**changes: Any) -> models.Task:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "workspace_id": WORKSPACE,
        "project_id": PROJECT_ROW.id,
        "number": 42,
        "title": 'Ünïcode ✓ "quoted" \\ and\nnewline',
        "description": "Some text",
        "status": models.TaskStatus.IN_PROGRESS,
        "priority": models.TaskPriority.URGENT,
        "assignee_id": ASSIGNEE.id,
        "created_by_id": OWNER.id,
        "due_at": AT + timedelta(days=2, microseconds=1),
        "created_at": AT,
        "updated_at": AT + timedelta(hours=1),
        "deleted_at": None,
        "version": 7,
    }
    return models.Task(**{**values, **changes})


TASKS = {
    "plain": _task(),
    "unassigned": _task(assignee_id=None, description=None, due_at=None),
    "deleted": _task(deleted_at=AT + timedelta(minutes=5), status=models.TaskStatus.DONE),
}
MEMBERS = {OWNER.id: OWNER, ASSIGNEE.id: ASSIGNEE}


def _loaded(task: models.Task | None, kind: str, actor: models.User | None) -> LoadedEvent:
    event = {
        "kind": kind,
        "task": str(task.id if task is not None else uuid.uuid4()),
        "workspace": str(WORKSPACE),
        "project": str(PROJECT_ROW.id),
        "actor": str(actor.id) if actor is not None else None,
        "at": "2026-03-01T09:30:00.250000+00:00",
    }
    names = {actor.id if actor else None}
    if task is not None:
        names.update((task.assignee_id, task.created_by_id))
    names.discard(None)
    project = PROJECT_ROW if task is not None else None
    return LoadedEvent(event, WORKSPACE, task, project, {}, MEMBERS, names <= MEMBERS.keys())


def _shared(document: str, variables: dict[str, Any], role: models.Role) -> SharedTaskEvents:
    viewer = uuid.uuid4()

    def no_database() -> Any:
        raise AssertionError("a task event's payload read the database")

    ctx = Context(
        request=None,  # type: ignore[arg-type]
        response=None,
        settings=make_settings(),
        sessionmaker=no_database,  # type: ignore[arg-type]
        read_scalar=None,  # type: ignore[arg-type]
        limiter=None,  # type: ignore[arg-type]
        viewer_id=viewer,
    )
    executor = PerEventMemoExecutionContext.build(
        schema._schema,
        parse(document),
        context_value=ctx,
        raw_variable_values={"w": "V29ya3NwYWNlOg==", **variables},
    )
    assert not isinstance(executor, list), executor
    return SharedTaskEvents.of(executor, ctx, WORKSPACE)


CASES = [
    (document, variables, role, task, kind, actor)
    for (document, variables), role, task, kind, actor in product(
        SELECTIONS,
        (models.Role.OWNER, models.Role.ADMIN, models.Role.MEMBER, models.Role.VIEWER),
        (*TASKS, None),
        ("CREATED", "DELETED"),
        ("owner", None),
    )
]


@pytest.mark.parametrize(("document", "variables", "role", "task", "kind", "actor"), CASES)
async def test_the_projected_payload_is_the_executed_one(
    document: str,
    variables: dict[str, Any],
    role: models.Role,
    task: str | None,
    kind: str,
    actor: str | None,
) -> None:
    shared = _shared(document, variables, role)
    assert shared.projector is not None
    loaded = _loaded(TASKS[task] if task else None, kind, OWNER if actor else None)
    delivery = loaded.for_role(role)
    projected = shared.projected(delivery)
    executed = await shared.executed(delivery)
    assert projected is not None
    assert not executed.personal, executed.json
    assert projected.json == executed.json


def test_every_task_scalar_is_projected() -> None:
    """EVERYTHING selects every field of Task that is role-determined and every field of
    TaskEvent, Project and User."""
    names: set[str] = set()

    class Names(Visitor):
        def enter_field(self, node: FieldNode, *_: Any) -> None:
            names.add(node.name.value)

    visit(parse(EVERYTHING), Names())
    for type_name in ("TaskEvent", "Task", "Project", "User"):
        assert ROLE_DETERMINED[type_name] <= names, type_name


async def test_what_the_projector_cannot_vouch_for_is_executed() -> None:
    """A named user the delivery does not hold (a non-member, whom only some viewers may see),
    a project the delivery lacks: the projector declines, and the payload is executed."""
    shared = _shared(EVERYTHING, {}, models.Role.ADMIN)
    stranger_acts = _loaded(TASKS["plain"], "UPDATED", STRANGER).for_role(models.Role.ADMIN)
    assert shared.projected(stranger_acts) is None
    assigned = _task(assignee_id=STRANGER.id)
    assert shared.projected(_loaded(assigned, "UPDATED", OWNER).for_role(models.Role.ADMIN)) is None
    orphan = Delivery(
        _loaded(TASKS["plain"], "UPDATED", OWNER).event, models.Role.ADMIN, TASKS["plain"], None, {}
    )
    assert shared.projected(orphan) is None
    bad_kind = Delivery({**orphan.event, "kind": "EXPLODED"}, models.Role.ADMIN, None, None, {})
    assert shared.projected(bad_kind) is None


@pytest.mark.parametrize(
    "document",
    [
        "subscription($w: ID!) { taskEvents(workspaceId: $w) { task { labels { name } } } }",
        "subscription($w: ID!) { taskEvents(workspaceId: $w) { task { project { workspace "
        "{ viewerRole } } } } }",
    ],
)
def test_a_selection_the_projector_does_not_know_is_executed(document: str) -> None:
    assert _shared(document, {}, models.Role.ADMIN).projector is None
