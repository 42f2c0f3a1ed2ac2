"""Mutation payloads, compiled: after a mutation's write, its payload's selection is read by one
statement in the mutation's transaction, built by the compiler the fast path uses for queries.

A mutation resolver (graphql_api/resolvers/mutation.py) returns its payload object as always.
When the executor completes that value for a root mutation field, it asks `read_payload` for the
payload's JSON instead: `userErrors` is empty (a payload with errors is not compiled), the
`__typename`s are literals and each object field (`task`, `project`, ...: any Node type of
resolvers/nodes.py) is its row read again, with every nested field, by one SQL statement.
Whatever the compiler does not know (Unsupported) is completed by the resolvers, as is a payload
with nothing to read (an id, or userErrors only) or whose selection is at hand (columns and ids
of its objects, and computed fields whose object can answer them, e.g. createTask's identifier),
which costs no statement that way, or one with a role check that may refuse (an error there
would fail the mutation's transaction).
tests/test_payloads.py compares both paths on every compiled mutation.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

import orjson
from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    GraphQLResolveInfo,
    VariableNode,
    Visitor,
    visit,
)
from sqlalchemy import select

from db.encodings import sql_literal
from db.json_sql import (
    EMPTY_JSON_LIST,
    JSON_NULL,
    TooManyKeys,
    json_object,
    may_refuse,
    text_root,
)
from graphql_api.context import Context
from graphql_api.events.execution_context import PerEventMemoExecutionContext
from graphql_api.fast import Unsupported
from graphql_api.fast.compiler import Compiler
from graphql_api.fast.plans import PlanCache
from graphql_api.resolvers.nodes import NODE_TYPES
from graphql_api.schema.describe import answered_at_hand
from graphql_api.schema.payloads import Payload
from graphql_api.schema.relay import from_global_id

log = logging.getLogger(__name__)
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


# A payload's plan: its SQL and parameters, where in those the ids of its objects go, and,
# when every field it selects of its objects may be at hand (columns, ids, computed fields that
# say so), what each object must answer to be (the computed fields' at_hand tests).
class Plan(NamedTuple):
    sql: str
    values: list[Any]
    positions: dict[str, list[int]]
    at_hand: dict[str, tuple[Callable[[Any], bool], ...]] | None


PLANS_SIZE = 1024
_PLANS: PlanCache[Plan] = PlanCache(PLANS_SIZE)


async def read_payload(
    executor: Any, payload_type: GraphQLObjectType, info: GraphQLResolveInfo[Any], payload: Payload
) -> dict[str, Any]:
    """The payload's `data` for this field, read by one statement; Unsupported when it is not
    compiled."""
    ctx: Context = info.context
    if not ctx.settings.fast_path or ctx.viewer_id is None or payload.user_errors:
        raise Unsupported("the resolvers complete it")
    objects = {f.name: _node_of(getattr(payload, f.name)) for f in dataclasses.fields(payload)}
    key = _plan_key(executor, info, ctx.viewer_id, objects)
    cached = _PLANS.get(key) if key is not None else False
    if isinstance(cached, bool):  # a miss: the cache holds plans, and None for "not compiled"
        plan = _plan(executor, payload_type, info, ctx, objects)
        if key is not None:
            _PLANS.put(key, plan)
    else:
        plan = cached
    if plan is None:
        raise Unsupported("not compiled")
    sql, values, positions, at_hand = plan
    if at_hand is not None and all(
        test(getattr(payload, attr)) for attr, tests in at_hand.items() for test in tests
    ):
        raise Unsupported("at hand: the resolvers answer it from the objects, no statement")
    params = list(values)
    for attr, places in positions.items():
        node = objects[attr]
        assert node is not None
        for i in places:
            params[i] = node[1]
    text = await ctx.db.scalar_sql(sql, params)
    data: dict[str, Any] = orjson.loads(text)
    return data


def _node_of(value: Any) -> tuple[str, uuid.UUID] | None:
    """(type, id) of a payload's object; None for none (and for userErrors)."""
    if value is None or isinstance(value, list):
        return None
    parsed = from_global_id(getattr(value, "id", None) or "")
    if parsed is None or parsed[0] not in NODE_TYPES:
        raise Unsupported(f"payload field of {type(value).__name__}")
    return parsed


def _plan(
    executor: Any,
    payload_type: GraphQLObjectType,
    info: GraphQLResolveInfo[Any],
    ctx: Context,
    objects: dict[str, tuple[str, uuid.UUID] | None],
) -> Plan | None:
    """The statement, compiled with a stand-in id for each object, and where those ids are."""
    assert ctx.viewer_id is not None
    compiler = Compiler.within(
        executor.schema,
        executor.operation,
        executor.fragment_definitions,
        executor.variable_values,
        ctx.viewer_id,
        ctx.db,
    )
    pairs: list[tuple[str, str]] = []
    stand_ins: dict[str, uuid.UUID] = {}
    at_hand: dict[str, tuple[Callable[[Any], bool], ...]] | None = {}
    selections = compiler.sub(info.field_nodes)
    try:
        for key, nodes in compiler.collect(selections, payload_type.name).items():
            name = nodes[0].name.value
            attr = _CAMEL.sub("_", name).lower()
            if name == "__typename":
                pairs.append((key, sql_literal(payload_type.name)))
            elif name == "userErrors":
                pairs.append((key, EMPTY_JSON_LIST))
            elif attr not in objects:
                raise Unsupported(f"payload field {name}")
            elif (node := objects[attr]) is None:
                pairs.append((key, JSON_NULL))
            else:
                stand_in = stand_ins.setdefault(attr, uuid.uuid4())
                # The row within the viewer's workspaces, soft-deleted or not: a payload shows
                # the object as the mutation left it (deleteTask's task is deleted).
                repo = NODE_TYPES[node[0]].repository(ctx.db, ctx.scope)
                stmt = repo.restrict(select(repo.model)).where(repo.model.id == stand_in)
                pairs.append((key, compiler.one(node[0], stmt, compiler.sub(nodes))))
                tests = _at_hand(compiler, executor.schema.get_type(node[0]), nodes)
                at_hand = None if tests is None or at_hand is None else {**at_hand, attr: tests}
        if not stand_ins:
            raise Unsupported("nothing to read: the payload is at hand")
        sql = text_root(json_object(pairs))
        if may_refuse(sql):
            # A role check (e.g. auditEvents) that would refuse with an error, which would fail
            # the mutation's transaction: the resolvers decide it and report the error there.
            raise Unsupported("a role check")
    except (Unsupported, TooManyKeys) as exc:
        log.debug("payload not compiled: %s", exc)
        return None
    values = compiler.params.values
    positions = {
        attr: [i for i, v in enumerate(values) if v == stand_in]
        for attr, stand_in in stand_ins.items()
    }
    return Plan(sql, values, positions, at_hand)


def _at_hand(
    compiler: Compiler, object_type: GraphQLObjectType, nodes: list[FieldNode]
) -> tuple[Callable[[Any], bool], ...] | None:
    """What an object must answer for its selection to need no statement: every field a column,
    an id, __typename or a computed field with an at_hand test (those tests); None when some
    field needs the database (a reference, a list, a connection)."""
    tests: list[Callable[[Any], bool]] = []
    for field_nodes in compiler.collect(compiler.sub(nodes), object_type.name).values():
        name = field_nodes[0].name.value
        if name == "__typename":
            continue
        answered = answered_at_hand(object_type.fields[name])
        if answered is None:
            return None
        tests += answered
    return tuple(tests)


def _plan_key(
    executor: Any,
    info: GraphQLResolveInfo[Any],
    viewer: uuid.UUID,
    objects: dict[str, tuple[str, uuid.UUID] | None],
) -> Any:
    """What a plan depends on: the document and this field of it, the viewer (their workspaces
    are parameters), which objects the payload holds, of which types, and the values of the
    variables its selection uses (not those of the input, which change with every write)."""
    operation = info.operation
    if operation.loc is None:
        return None
    try:
        values = orjson.dumps(
            {n: executor.variable_values.coerced.get(n) for n in sorted(_variables_used(info))},
            option=orjson.OPT_SORT_KEYS,
        )
    except TypeError:
        return None
    shape = tuple((attr, node[0] if node else None) for attr, node in objects.items())
    document = operation.loc.source.body
    return (document, operation.loc.start, info.path.key, viewer, shape, values)


def _variables_used(info: GraphQLResolveInfo[Any]) -> frozenset[str]:
    """The variables the payload's selection uses, through its fragments too: found once per
    document and field (where the field's nodes are in the document's text)."""
    locs = [node.loc for node in info.field_nodes]
    if any(loc is None for loc in locs):
        return _collect_variables(info)
    key = (locs[0].source.body, *(loc.start for loc in locs))  # type: ignore[union-attr]
    names = _USED.get(key)
    if not isinstance(names, frozenset):
        names = _collect_variables(info)
        _USED.put(key, names)
    return names


_USED: PlanCache[frozenset[str]] = PlanCache(PLANS_SIZE)


def _collect_variables(info: GraphQLResolveInfo[Any]) -> frozenset[str]:
    names: set[str] = set()
    spreads: set[str] = set()

    class Collect(Visitor):
        def enter_variable(self, node: VariableNode, *_: Any) -> None:
            names.add(node.name.value)

        def enter_fragment_spread(self, node: FragmentSpreadNode, *_: Any) -> None:
            spreads.add(node.name.value)

    pending: list[Any] = [n.selection_set for n in info.field_nodes if n.selection_set]
    done: set[str] = set()
    while pending:
        visit(pending.pop(), Collect())
        for name in spreads - done:
            done.add(name)
            if (fragment := info.fragments.get(name)) is not None:
                pending.append(fragment)
    return frozenset(names)


class CompiledPayloads(PerEventMemoExecutionContext):
    """The executor: a root mutation field's payload is completed from its compiled statement
    when it can be, by the resolvers otherwise."""

    def complete_object_value(
        self,
        return_type: GraphQLObjectType,
        field_details_list: Any,
        info: GraphQLResolveInfo[Any],
        path: Any,
        result: Any,
        position_context: Any,
    ) -> Any:
        if isinstance(result, Payload) and info.parent_type is self.schema.mutation_type:
            return self._complete_payload(
                return_type, field_details_list, info, path, result, position_context
            )
        return super().complete_object_value(
            return_type, field_details_list, info, path, result, position_context
        )

    async def _complete_payload(
        self,
        return_type: GraphQLObjectType,
        field_details_list: Any,
        info: GraphQLResolveInfo[Any],
        path: Any,
        result: Payload,
        position_context: Any,
    ) -> Any:
        try:
            return await read_payload(self, return_type, info, result)
        except Unsupported:
            completed = super().complete_object_value(
                return_type, field_details_list, info, path, result, position_context
            )
            return await completed if self.is_awaitable(completed) else completed
