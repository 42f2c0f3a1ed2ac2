"""Task-event payloads written straight from the loaded rows, without executing the selection.

For a role-determined taskEvents subscription (events/group_execution.py), every field the
document selects follows from the event and what the hub loaded for it (events/loader.Delivery:
the task and its project when visible, the workspace's users the event names). A *projector* is
compiled once per document, operation and variables: the fields graphql-core would collect
(aliases, fragments, inline fragments, @include/@skip, __typename; graphql-core's own
collect_fields, so the same keys in the same order), each with how to read its value from the
delivery and how its GraphQL type serializes it. It returns the `data` of the payload, equal to
what executing the selection gives.

The fields' values come from their descriptions (schema/describe.py) where those say enough:
Column (the model attribute), GlobalId (db.ids.global_id), Reference to a user (the delivery's
users) or to the task's project (the delivery's project); the few others are listed below
(TaskEvent's own fields, Task.identifier). A selection with anything else compiles to no
projector, and a value the projector cannot vouch for (a user the delivery does not hold, a null
where the type forbids one, a value its scalar would not serialize as is) raises Unprojectable:
the caller executes the selection instead, which answers, or shapes the error, as it always has.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
)
from graphql.execution.collect_fields import (
    FieldDetailsList,
    GroupedFieldSet,
    collect_fields,
    collect_subfields,
)

from db.encodings import enum_text, iso_text, task_identifier
from db.ids import global_id
from graphql_api.events.loader import Delivery
from graphql_api.schema.describe import Column, GlobalId, Reference, description_of
from graphql_api.schema.subscriptions import TaskEventKind

# Reads one field's value: (the parent object, the delivery) -> the value before serializing.
Read = Callable[[Any, Delivery], Any]
# Writes one field's JSON value from its parent object.
Write = Callable[[Any, Delivery], Any]
Projector = Callable[[Delivery], dict[str, Any]]

INT_MIN, INT_MAX = -(2**31), 2**31 - 1


class Unprojectable(Exception):
    """This event's payload must be executed (see the module's docstring)."""


def _fail() -> Any:
    raise Unprojectable


def _actor(event: Any, delivery: Delivery) -> Any:
    actor = delivery.event.get("actor")
    if not actor:
        return None
    user = delivery.users.get(uuid.UUID(actor))
    return user if user is not None else _fail()  # whom only some viewers may see


def _identifier(task: Any, delivery: Delivery) -> str:
    return task_identifier(_project_of(task, delivery).key, task.number)


def _project_of(task: Any, delivery: Delivery) -> Any:
    project = delivery.project
    if project is None or project.id != task.project_id:
        raise Unprojectable
    return project


# Fields that are not Column or GlobalId, by (type, field): how to read them. TaskEvent is made
# for each event by subscriptions.task_event; its parent object here is the delivery itself.
EXPLICIT: dict[tuple[str, str], Read] = {
    ("TaskEvent", "kind"): lambda _, d: TaskEventKind(d.event["kind"]),
    ("TaskEvent", "taskId"): lambda _, d: global_id("Task", uuid.UUID(d.event["task"])),
    ("TaskEvent", "at"): lambda _, d: datetime.fromisoformat(d.event["at"]),
    ("TaskEvent", "actor"): _actor,
    ("TaskEvent", "task"): lambda _, d: d.task,
    ("Task", "identifier"): _identifier,
}


def _reference(spec: Reference) -> Read | None:
    column = spec.column
    if spec.target == "User":

        def user(row: Any, delivery: Delivery) -> Any:
            key = getattr(row, column)
            if key is None:
                return None
            found = delivery.users.get(key)
            return found if found is not None else _fail()

        return user
    if spec.target == "Project" and column == "project_id":
        return _project_of
    return None


def _read(type_name: str, field_name: str, field_def: Any) -> Read | None:
    explicit = EXPLICIT.get((type_name, field_name))
    if explicit is not None:
        return explicit
    spec = description_of(field_def)
    if isinstance(spec, Column):
        attr = spec.attr
        return lambda row, _: getattr(row, attr)
    if isinstance(spec, GlobalId) and spec.type_attr is None:
        attr = spec.attr
        return lambda row, _: global_id(type_name, getattr(row, attr))
    if isinstance(spec, Reference):
        return _reference(spec)
    return None


def _string(value: Any) -> Any:
    return value if type(value) is str else _fail()


def _int(value: Any) -> Any:
    return value if type(value) is int and INT_MIN <= value <= INT_MAX else _fail()


def _boolean(value: Any) -> Any:
    return value if type(value) is bool else _fail()


def _datetime(value: Any) -> Any:
    return iso_text(value) if isinstance(value, datetime) else _fail()


def _json(value: Any) -> Any:
    return value  # as stored; orjson writes it as the executed payload's would be


# Scalars by name: their serialize, for the values the rows hold (anything else: execute).
SCALARS: dict[str, Callable[[Any], Any]] = {
    "String": _string,
    "ID": _string,
    "Int": _int,
    "Boolean": _boolean,
    "DateTime": _datetime,
    "JSON": _json,
}


def _enum(graphql_type: GraphQLEnumType) -> Callable[[Any], Any]:
    names = frozenset(graphql_type.values)

    def serialize(value: Any) -> Any:
        if isinstance(value, enum.Enum) and value.name in names:
            return enum_text(value)
        raise Unprojectable

    return serialize


class _Compiler:
    def __init__(self, executor: Any) -> None:
        self.executor = executor

    def root(self) -> Projector | None:
        executor = self.executor
        schema = executor.schema
        root_type = schema.subscription_type
        collected = collect_fields(
            schema,
            executor.fragments,
            executor.variable_values,
            root_type,
            executor.operation,
            executor.hide_suggestions,
        ).grouped_field_set
        if len(collected) != 1:
            return None
        ((key, details),) = collected.items()
        if details[0].node.name.value != "taskEvents":
            return None
        field_def = root_type.fields["taskEvents"]
        write = self.value(field_def.type, details)
        if write is None:
            return None
        return lambda delivery: {key: write(delivery, delivery)}

    def value(self, graphql_type: GraphQLOutputType, details: FieldDetailsList) -> Write | None:
        """How to write a value of `graphql_type` (selected by `details`) as JSON."""
        non_null = isinstance(graphql_type, GraphQLNonNull)
        named = graphql_type.of_type if isinstance(graphql_type, GraphQLNonNull) else graphql_type
        write: Write | None = None
        if isinstance(named, GraphQLObjectType):
            write = self.object(named, details)
        else:
            serialize: Callable[[Any], Any] | None = None
            if isinstance(named, GraphQLEnumType):
                serialize = _enum(named)
            elif isinstance(named, GraphQLScalarType):
                serialize = SCALARS.get(named.name)
            # Lists, interfaces, unions: not in a role-determined selection.
            if serialize is not None:
                leaf = serialize
                write = lambda value, _: leaf(value)  # noqa: E731
        if write is None:
            return None
        present = write
        if non_null:
            return lambda value, d: present(value, d) if value is not None else _fail()
        return lambda value, d: present(value, d) if value is not None else None

    def object(self, graphql_type: GraphQLObjectType, details: FieldDetailsList) -> Write | None:
        executor = self.executor
        grouped: GroupedFieldSet = collect_subfields(
            executor.schema,
            executor.fragments,
            executor.variable_values,
            executor.operation,
            graphql_type,
            details,
            executor.hide_suggestions,
        ).grouped_field_set
        type_name = graphql_type.name
        fields: list[tuple[str, Read, Write]] = []
        for key, field_details in grouped.items():
            name = field_details[0].node.name.value
            if name == "__typename":
                fields.append((key, lambda *_: type_name, lambda value, _: value))
                continue
            field_def = graphql_type.fields.get(name)
            if field_def is None:
                return None
            read = _read(type_name, name, field_def)
            write = self.value(field_def.type, field_details) if read is not None else None
            if read is None or write is None:
                return None
            fields.append((key, read, write))
        selected = tuple(fields)

        def write_object(parent: Any, delivery: Delivery) -> dict[str, Any]:
            return {key: write(read(parent, delivery), delivery) for key, read, write in selected}

        return write_object


def compile_projector(executor: Any) -> Projector | None:
    """The projector of a role-determined taskEvents operation, or None when a field it
    selects is not one the projector knows (then every payload is executed)."""
    return _Compiler(executor).root()
