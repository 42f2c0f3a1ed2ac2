"""`@mutation(Payload)`: what every mutation field does around its own work.

    @mutation(CreateTaskPayload)
    async def create_task(info: strawberry.Info, input: CreateTaskInput) -> CreateTaskPayload:
        ...  # raise a DomainError for an expected failure; return the payload on success

One mutation field = one SAVEPOINT. Expected failures (DomainError) become the payload's
userErrors and leave nothing behind; anything else propagates and the operation is rolled back
whole. The writes kept with Context.keep_write run after the SAVEPOINT either way, and the
DataLoaders forget what they loaded (the write may have changed what the viewer sees). The
payload's object is then read back by one compiled statement (graphql_api/fast/payloads.py).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import strawberry

from db.errors import DomainError
from graphql_api.context import Context
from graphql_api.schema.payloads import Payload, UserError

P = TypeVar("P", bound=Payload)
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
                savepoint = await db.session.begin_nested()
            try:
                result = await resolve(info, *args, **kwargs)
            except DomainError as exc:
                async with db.lock:
                    await savepoint.rollback()
                await ctx.run_kept_writes()  # after the rollback to the savepoint, so they stay
                ctx.loaders.clear()
                return payload(user_errors=[UserError.from_domain(exc)])
            except BaseException:
                async with db.lock:
                    await savepoint.rollback()
                raise  # the operation is rolled back; the unit of work runs the kept writes then
            async with db.lock:
                await savepoint.commit()
            await ctx.run_kept_writes()
            ctx.loaders.clear()
            return result

        return run

    return decorate
