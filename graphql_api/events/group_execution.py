"""Subscription.taskEvents executed by the hub, once per event for each group of subscribers
that would get the same payload (events/shared.py), instead of once per subscriber: written by
the projector (events/projector.py) where it can be, otherwise executed in the event's unit of
work (events/event_execution.py).

Which subscribers get the same payload: those of the same document, operation, variables and
cost, and, for the viewer-dependent part,
- when every field the document selects is one whose value follows from the event, the task's
  visibility and the users the event names (ROLE_DETERMINED), and every user the event names is
  a member of the workspace (whom every member sees alike): the subscribers for whom the task is
  visible, and those for whom it is not (policy.sees_task with each one's current role);
- otherwise (a field that reads with the viewer's scope, e.g. Task.labels or Workspace.viewerRole,
  or a named user who is not a member, whom only some viewers may see): one group per user.
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable
from dataclasses import dataclass
from inspect import isawaitable
from typing import Any

import orjson
import strawberry
from graphql import (
    BREAK,
    DirectiveNode,
    FieldNode,
    GraphQLSchema,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    print_ast,
    visit,
)
from graphql.execution import execute_subscription_event
from graphql.language import ExecutableDefinitionNode

from graphql_api.context import Context

# As modules, not their names: importing either of them first imports graphql_api.schema, whose
# Subscription imports this module (through resolvers/subscriptions.py) before they are done.
from graphql_api.events import event_execution
from graphql_api.events import projector as projectors
from graphql_api.events.loader import Delivery, LoadedEvent
from graphql_api.events.shared import SUBSCRIPTION_EXECUTOR, Payload
from graphql_api.schema.errors import shape_errors

_USER = frozenset({"id", "email", "displayName", "createdAt"})
# Fields whose value, in a task event, is the same for every member who sees the task (or for
# every member who does not): nothing in them reads with the viewer's scope or role. A field
# added here must be so; anything else makes the subscription's payloads per user.
ROLE_DETERMINED: dict[str, frozenset[str]] = {
    "Subscription": frozenset({"taskEvents"}),
    "TaskEvent": frozenset({"kind", "taskId", "at", "actor", "task"}),
    "Task": frozenset(
        {
            *("id", "number", "title", "description", "status", "priority", "dueAt"),
            *("createdAt", "updatedAt", "deletedAt", "version", "identifier", "project"),
            *("assignee", "createdBy"),
        }
    ),
    # The visible task's project (primed by the hub), and users the event names.
    "Project": frozenset(
        {"id", "key", "name", "description", "archivedAt", "createdAt", "updatedAt", "version"}
    ),
    "User": _USER,
    "Node": frozenset({"id"}),
}
CONDITIONS = frozenset({"include", "skip"})  # their variables are in the group's key


def role_determined(schema: GraphQLSchema, definitions: list[ExecutableDefinitionNode]) -> bool:
    """Whether every field the definitions select is in ROLE_DETERMINED (and no directive but
    @include/@skip): then a payload depends on the viewer only through the event's loaded view."""
    allowed = True

    class Check(Visitor):
        def enter_field(self, node: FieldNode, *_: Any) -> Any:
            nonlocal allowed
            parent = type_info.get_parent_type()
            name = node.name.value
            if name != "__typename" and (
                parent is None or name not in ROLE_DETERMINED.get(parent.name, ())
            ):
                allowed = False
                return BREAK
            return None

        def enter_directive(self, node: DirectiveNode, *_: Any) -> Any:
            nonlocal allowed
            if node.name.value not in CONDITIONS:
                allowed = False
                return BREAK
            return None

    for definition in definitions:
        type_info = TypeInfo(schema)
        visit(definition, TypeInfoVisitor(type_info, Check()))
        if not allowed:
            return False
    return True


@dataclass(frozen=True, slots=True, eq=False)
class SharedTaskEvents:
    """A taskEvents subscription as the hub executes it (events/shared.SharedExecution)."""

    executor: Any  # graphql-core's Executor of the subscription operation
    ctx: Context
    workspace_id: uuid.UUID
    operation_key: Hashable  # document, operation, variables and cost
    role_determined: bool
    extensions: dict[str, Any]  # what strawberry's extensions add to each result (the cost)
    cohort_key: Hashable
    # Writes the payload's data straight from the delivery (events/projector.py); None: the
    # selection has a field it does not know, and every payload is executed.
    projector: projectors.Projector | None = None

    @classmethod
    def create(cls, info: strawberry.Info, workspace_id: uuid.UUID) -> SharedTaskEvents | None:
        executor = SUBSCRIPTION_EXECUTOR.get()
        if executor is None or executor.operation is not info._raw_info.operation:
            return None
        return cls.of(executor, info.context, workspace_id)

    @classmethod
    def of(cls, executor: Any, ctx: Context, workspace_id: uuid.UUID) -> SharedTaskEvents:
        """For the graphql-core executor of a taskEvents subscription operation."""
        extensions = {"cost": ctx.cost.as_extension()} if ctx.cost is not None else {}
        definitions = [executor.operation, *executor.fragment_definitions.values()]
        key = (
            tuple(print_ast(d) for d in definitions),
            orjson.dumps(
                executor.variable_values.coerced, option=orjson.OPT_SORT_KEYS, default=repr
            ),
            orjson.dumps(extensions, option=orjson.OPT_SORT_KEYS),
        )
        by_role = role_determined(executor.schema, definitions)
        cohort = key if by_role else (key, ctx.viewer_id)
        projector = projectors.compile_projector(executor) if by_role else None
        return cls(executor, ctx, workspace_id, key, by_role, extensions, cohort, projector)

    def group_key(self, delivery: Delivery, loaded: LoadedEvent) -> Hashable:
        if self.role_determined and loaded.names_only_members:
            return (self.operation_key, delivery.task is not None)
        return (self.operation_key, self.ctx.viewer_id)

    def projected(self, delivery: Delivery) -> Payload | None:
        if self.projector is None:
            return None
        try:
            data = self.projector(delivery)
        except Exception:  # Unprojectable, or what executing would also raise or report
            return None
        return Payload(self._json({"data": data}), personal=False)

    async def payload(self, delivery: Delivery) -> Payload:
        projected = self.projected(delivery)
        if projected is not None:
            return projected
        return await self.executed(delivery)

    async def executed(self, delivery: Delivery) -> Payload:
        """The payload as executing the selection set gives it."""
        async with event_execution.event_operation(self.ctx, self.workspace_id, delivery):
            result = execute_subscription_event(
                self.executor.build_per_event_executor(event_execution.task_event(delivery))
            )
            if isawaitable(result):
                result = await result
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            production = self.ctx.settings.is_production
            shaped = shape_errors(result.errors, self.ctx.request_id, production)
            body["errors"] = [error.formatted for error in shaped]
        return Payload(self._json(body), personal=bool(result.errors))

    def _json(self, body: dict[str, Any]) -> bytes:
        if self.extensions:
            body["extensions"] = self.extensions
        return orjson.dumps(body)
