"""The schema extension that runs compiled queries instead of the resolvers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import orjson
from graphql import ExecutionResult as GraphQLExecutionResult
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from db.errors import is_refusal
from db.json_sql import TooManyKeys
from graphql_api.context import Context
from graphql_api.fast import Unsupported
from graphql_api.fast.compiler import Compiler
from graphql_api.fast.plans import PLAN_REFUSED, PLANS, Plan, plan_key

log = logging.getLogger(__name__)


class FastPath(SchemaExtension):
    async def on_execute(self) -> AsyncIterator[None]:
        ec = self.execution_context
        ctx: Context = ec.context
        if (
            ec.result is None  # not refused already (cost or rate limit)
            and ctx.settings.fast_path
            and ec.operation_type == OperationType.QUERY
            and ctx.viewer_id is not None
            and not ctx.bad_token
            and ec.graphql_document is not None
            and not PLAN_REFUSED.get()  # the front ran this plan already, and it refused
        ):
            plan = self._plan(ctx)
            if plan is not None:
                sql, values, _ = plan
                try:
                    text = await ctx.read_scalar(sql, tuple(values))
                except Exception as exc:
                    if not is_refusal(exc):
                        raise
                    # A role check failed (e.g. auditEvents for a MEMBER): the resolvers
                    # answer, with the error in its place.
                    log.debug("fast path refused: %s", exc)
                else:
                    ec.result = GraphQLExecutionResult(data=orjson.Fragment(text), errors=None)  # type: ignore[arg-type]
        yield

    def _plan(self, ctx: Context) -> Plan | None:
        ec = self.execution_context
        key = plan_key(ec.query, ec.operation_name, ec.variables, ctx.viewer_id)
        if key is None:
            return None
        cached = PLANS.get(key)
        if cached is not False:
            return cached  # type: ignore[return-value]
        schema = ec.schema._schema  # the graphql-core schema
        assert ec.graphql_document is not None and ctx.viewer_id is not None
        try:
            sql, values = Compiler(
                schema, ec.graphql_document, ec.operation_name, ec.variables, ctx.viewer_id, ctx.db
            ).compile()
            plan: Plan | None = (sql, values, ctx.cost)
        except (Unsupported, TooManyKeys) as exc:
            log.debug("fast path declined: %s", exc)
            plan = None
        PLANS.put(key, plan)
        return plan
