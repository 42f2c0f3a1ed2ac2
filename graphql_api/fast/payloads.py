"""Mutation payloads, compiled: after a mutation's write, its payload's selection is read by one
statement in the mutation's transaction, built by the compiler the fast path uses for queries.

A mutation resolver (graphql_api/resolvers/mutation.py) returns its payload object as always.
When the executor completes that value for a root mutation field, it asks `read_payload` for the
payload's JSON instead: `userErrors` is empty (a payload with errors is not compiled), the
`__typename`s are literals and each object field (`task`, `project`, ...) is its row read again,
with every nested field, by one SQL statement. Whatever the compiler does not know (Unsupported)
is completed by the resolvers, as is a payload with nothing to read (an id, or userErrors only),
which costs no statement that way, or one with a role check that may refuse (an error there would
fail the mutation's transaction). tests/test_fast_path.py compares both on every compiled
mutation.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from graphql import GraphQLObjectType, GraphQLResolveInfo
from sqlalchemy import select

from db.encodings import sql_literal
from db.errors import refused_sql
from db.repositories import (
    CommentRepository,
    LabelRepository,
    ProjectRepository,
    TaskRepository,
    WorkspaceRepository,
)
from graphql_api.context import Context
from graphql_api.fast.compiler import Compiler
from graphql_api.fast.sql import Unsupported, json_object
from graphql_api.schema.payloads import Payload
from graphql_api.schema.relay import from_global_id
from graphql_api.schema.subscriptions import PerEventMemoExecutionContext

# The objects a payload may hold, by type: their rows within the viewer's workspaces. Soft
# deletion is no filter here: a payload shows the object as the mutation left it (deleteTask's
# task is deleted).
_REPOSITORIES: dict[str, Any] = {
    "Task": TaskRepository,
    "Project": ProjectRepository,
    "Label": LabelRepository,
    "Comment": CommentRepository,
    "Workspace": WorkspaceRepository,
}
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_REFUSAL = refused_sql("").partition("(")[0] + "("


async def read_payload(
    executor: Any, payload_type: GraphQLObjectType, info: GraphQLResolveInfo[Any], payload: Payload
) -> dict[str, Any]:
    """The payload's `data` for this field, read by one statement; Unsupported when it is not
    compiled."""
    ctx: Context = info.context
    if not ctx.settings.fast_path or ctx.viewer_id is None or payload.user_errors:
        raise Unsupported("the resolvers complete it")
    compiler = Compiler.within(
        executor.schema,
        executor.operation,
        executor.fragment_definitions,
        executor.variable_values,
        ctx.viewer_id,
        ctx.db,
    )
    pairs: list[tuple[str, str]] = []
    reads = 0
    selections = compiler.sub(info.field_nodes)
    for key, nodes in compiler.collect(selections, payload_type.name).items():
        name = nodes[0].name.value
        if name == "__typename":
            pairs.append((key, sql_literal(payload_type.name)))
        elif name == "userErrors":
            pairs.append((key, "'[]'::json"))
        else:
            value = getattr(payload, _CAMEL.sub("_", name).lower(), None)
            pairs.append((key, _object(compiler, ctx, value, compiler.sub(nodes))))
            reads += value is not None
    if not reads:
        raise Unsupported("nothing to read: the payload is at hand")
    sql = f"SELECT {json_object(pairs)}::text"
    if _REFUSAL in sql:
        # A role check (e.g. auditEvents) that would refuse with an error, which would fail the
        # mutation's transaction: the resolvers decide it and report the error in its place.
        raise Unsupported("a role check")
    text = await ctx.db.scalar_sql(sql, compiler.params.values)
    data: dict[str, Any] = orjson.loads(text)
    return data


def _object(compiler: Compiler, ctx: Context, value: Any, selections: list[Any]) -> str:
    if value is None:
        return "null"
    parsed = from_global_id(getattr(value, "id", None) or "")
    if parsed is None or parsed[0] not in _REPOSITORIES:
        raise Unsupported(f"payload field of {type(value).__name__}")
    type_name, id = parsed
    repo = _REPOSITORIES[type_name](ctx.db, ctx.scope)
    stmt = repo.restrict(select(repo.model)).where(repo.model.id == id)
    return compiler.one(type_name, stmt, selections)


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
