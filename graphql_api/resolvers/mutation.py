"""`@mutation(Payload)`: what every mutation field does around its own work.

    @mutation(CreateTaskPayload)
    async def create_task(info: strawberry.Info, input: CreateTaskInput) -> CreateTaskPayload:
        ...  # raise a DomainError for an expected failure; return the payload on success

One mutation field = one SAVEPOINT, which the COMMIT releases. Expected failures (DomainError)
become the payload's userErrors and leave nothing behind (ROLLBACK TO the SAVEPOINT); anything
else propagates and the operation is rolled back whole. The writes kept with Context.keep_write
run after the field either way, and the DataLoaders forget what they loaded (the write may have
changed what the viewer sees). The payload's object is then read back by one compiled statement
(graphql_api/fast/payloads.py).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import strawberry

from db.errors import DomainError
from db.session import DbSession
from graphql_api.context import Context
from graphql_api.schema.payloads import Payload, UserError

P = TypeVar("P", bound=Payload)
# Each field's SAVEPOINT, sent as SQL rather than through Session.begin_nested(), which would
# RELEASE it when the field succeeds. The name may repeat: ROLLBACK TO finds the latest.
SAVEPOINT = "SAVEPOINT mutation_field"
Resolver = Callable[..., Awaitable[P]]


def mutation(payload: type[P]) -> Callable[[Resolver[P]], Resolver[P]]:
    """The resolver keeps its own signature (`info` first, then its arguments): strawberry reads
    the arguments from it through functools.wraps."""

    def decorate(resolve: Resolver[P]) -> Resolver[P]:
        @functools.wraps(resolve)
        async def run(info: strawberry.Info, *args: Any, **kwargs: Any) -> P:
            ctx: Context = info.context
            db = ctx.db
            async with db.lock:
                connection = await db.session.connection()
                await connection.exec_driver_sql(SAVEPOINT)
            try:
                result = await resolve(info, *args, **kwargs)
            except DomainError as exc:
                await _roll_back(db)
                await ctx.run_kept_writes()  # after the rollback to the savepoint, so they stay
                ctx.loaders.clear()
                return payload(user_errors=[UserError.from_domain(exc)])
            except BaseException:
                # The operation is rolled back whole (the unit of work runs the kept writes
                # then), also when this cannot be (a lost connection): the original error is
                # the one to report.
                with contextlib.suppress(Exception):
                    await _roll_back(db)
                raise
            # No RELEASE: the COMMIT keeps what the field wrote, and a round trip less here
            # matters to createTask, which holds its project's counter row until the commit.
            await ctx.run_kept_writes()
            ctx.loaders.clear()
            return result

        return run

    return decorate


async def _roll_back(db: DbSession) -> None:
    """Undo the field's writes, and forget the objects it loaded or made: rows they stand for may
    be gone or changed back (the loaders are cleared as well)."""
    async with db.lock:
        connection = await db.session.connection()
        await connection.exec_driver_sql("ROLLBACK TO " + SAVEPOINT)
        db.session.expunge_all()
