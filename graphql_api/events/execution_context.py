"""The execution context of every operation (schema/__init__.py `execution_context_class`, via
fast/payloads.CompiledPayloads): what a subscription's events need of graphql-core's executor."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLField, GraphQLObjectType, GraphQLResolveInfo
from graphql.execution import Executor
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from graphql_api.events.shared import SUBSCRIPTION_EXECUTOR


class PerEventMemoExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """graphql-core 3.3 copies the subscription's executor for each event, sharing its
    sub-field memo, which is keyed by the id of lists made anew for each event: it never hits
    and grows by every event for the life of the subscription (tens of objects per event, and
    full garbage collections that scan them all). Each event gets a memo of its own."""

    def build_per_event_executor(self, payload: Any) -> Executor[Any]:
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        return executor

    def build_resolve_info(
        self,
        field_def: GraphQLField,
        field_nodes: list[Any],
        parent_type: GraphQLObjectType,
        path: Path,
    ) -> GraphQLResolveInfo[Any]:
        if parent_type is self.schema.subscription_type:
            # The subscription's resolver may hand this executor to the hub, which then
            # executes the selection set of each event (events/shared.py).
            SUBSCRIPTION_EXECUTOR.set(self)
        return super().build_resolve_info(field_def, field_nodes, parent_type, path)
