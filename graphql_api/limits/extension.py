"""Enforcing the limits on every operation: document size and shape before execution, then the
node estimate and the client's rate-limit budget. `extensions.cost` reports what it cost."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import ExecutionResult, GraphQLError, OperationDefinitionNode
from graphql import OperationType as GraphQLOperationType
from graphql.utilities import get_operation_ast
from starlette.requests import Request
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from graphql_api.context import Context
from graphql_api.errors import ApiError
from graphql_api.limits.cost import estimate_nodes, points
from graphql_api.limits.rate import Decision
from graphql_api.limits.rules import rules


@dataclass(frozen=True)
class Cost:
    nodes: int
    points: int

    def as_extension(self) -> dict[str, int]:
        return {"requestedNodes": self.nodes, "points": self.points}

    @functools.cached_property
    def extension_json(self) -> bytes:
        """{"cost": ...} as JSON: a cached plan's cost is the same on every request."""
        return orjson.dumps({"cost": self.as_extension()})


def cost_limit_error(cost: Cost, limit: int) -> GraphQLError:
    return GraphQLError(
        f"this operation could return up to {cost.nodes} nodes; the limit is {limit}. "
        "Ask for smaller pages (first/last) or fewer nested connections.",
        extensions={"code": "COST_LIMIT_EXCEEDED", "requestedNodes": cost.nodes, "limit": limit},
    )


def rate_limited_error(decision: Decision) -> GraphQLError:
    return GraphQLError(
        f"rate limit exceeded: {decision.limit} points per window; "
        f"it resets at {decision.reset_at} (Unix time)",
        extensions={"code": "RATE_LIMITED", "resetAt": decision.reset_at},
    )


def rate_key(ctx: Context) -> str:
    if ctx.viewer_id is not None and not ctx.bad_token:
        return f"user:{ctx.viewer_id}"
    return f"ip:{ctx.client_ip}"


REFUSED_POINTS = 1  # a document refused before execution: its parsing and validation


async def charge(ctx: Context, points: int) -> Decision:
    """Spend the client's points; over HTTP, report the budget in the response headers."""
    decision = await ctx.limiter.charge(rate_key(ctx), points)
    if ctx.response is not None and isinstance(ctx.request, Request):  # not a WebSocket
        ctx.response.headers.update(decision.headers())
        if not decision.allowed:
            ctx.response.status_code = 429
    return decision


class Limits(SchemaExtension):
    """Every operation is charged once: what it may cost when it runs, at least one point when
    it is refused (too long, does not parse or validate, over the node limit), since a refused
    document costs the server its parsing and validation too."""

    charged = False

    async def charge(self, points: int) -> Decision:
        self.charged = True
        return await charge(self.execution_context.context, points)

    async def charge_refused(self) -> None:
        if not self.charged:
            await self.charge(REFUSED_POINTS)

    async def on_operation(self) -> AsyncIterator[None]:
        ctx: Context = self.execution_context.context
        s = ctx.settings
        query = self.execution_context.query or ""
        if len(query) > s.max_document_chars:
            await self.charge_refused()
            limit = s.max_document_chars
            raise ApiError(
                f"the document is {len(query)} characters long; the limit is {limit}", "BAD_REQUEST"
            )
        self.execution_context.parse_options["max_tokens"] = s.max_tokens
        self.execution_context.validation_rules = (
            *self.execution_context.validation_rules,
            *rules(
                s.max_depth,
                s.max_aliases,
                s.max_fragment_spreads,
                s.max_directives,
                s.introspection_enabled,
            ),
        )
        try:
            yield
        except GraphQLError:  # a syntax error (or too many tokens), raised by ParserCache
            await self.charge_refused()
            raise
        await self.charge_refused()

    async def on_validate(self) -> AsyncIterator[None]:
        # Charged here, not only when the operation ends: over a WebSocket, the operation's
        # stream is closed right after its errors are sent, and nothing after its yield runs.
        yield
        if self.execution_context.pre_execution_errors:
            await self.charge_refused()

    async def on_execute(self) -> AsyncIterator[None]:
        ec = self.execution_context
        ctx: Context = ec.context
        assert ec.graphql_document is not None
        mutation_fields = 0
        if ec.operation_type == OperationType.MUTATION:
            op = get_operation_ast(ec.graphql_document, ec.operation_name)
            if isinstance(op, OperationDefinitionNode):
                mutation_fields = len(op.selection_set.selections)
        nodes = estimate_nodes(
            ec.schema._schema, ec.graphql_document, ec.operation_name, ec.variables
        )
        kind = GraphQLOperationType.MUTATION if mutation_fields else GraphQLOperationType.QUERY
        ctx.cost = Cost(nodes, points(nodes, kind, mutation_fields))
        if nodes > ctx.settings.max_nodes:
            await self.charge_refused()
            ec.result = ExecutionResult(
                data=None, errors=[cost_limit_error(ctx.cost, ctx.settings.max_nodes)]
            )
        else:
            decision = await self.charge(ctx.cost.points)
            if not decision.allowed:
                ec.result = ExecutionResult(data=None, errors=[rate_limited_error(decision)])
        yield

    def get_results(self) -> dict[str, Any]:
        ctx: Context = self.execution_context.context
        return {"cost": ctx.cost.as_extension()} if ctx.cost is not None else {}
