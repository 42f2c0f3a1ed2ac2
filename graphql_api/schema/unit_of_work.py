"""One operation = one session = one transaction.

Commits a mutation that finished without top-level errors; rolls back everything else. The
decision is made from the GraphQL result, never from the HTTP status. The session is closed when
the operation ends, so none outlives it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from db.session import DbSession

if TYPE_CHECKING:
    from graphql_api.context import Context


class UnitOfWork(SchemaExtension):
    async def on_operation(self) -> AsyncIterator[None]:
        context: Context = self.execution_context.context
        async with context.sessionmaker() as session:
            context._db = DbSession(session)
            try:
                yield
                result = self.execution_context.result
                is_mutation = self.execution_context.operation_type == OperationType.MUTATION
                if is_mutation and result is not None and not result.errors:
                    await session.commit()
                else:
                    await session.rollback()
            finally:
                context._db = None
