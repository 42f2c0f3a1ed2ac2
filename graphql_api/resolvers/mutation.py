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
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import strawberry
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    GraphQLResolveInfo,
    InlineFragmentNode,
    SelectionSetNode,
    get_named_type,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from db.errors import DomainError
from db.session import DbSession
from graphql_api.context import Context, commit_begins
from graphql_api.schema.describe import answered_at_hand
from graphql_api.schema.payloads import Payload, UserError
from graphql_api.unit_of_work import statement_timeout_ms

P = TypeVar("P", bound=Payload)
# Each field's SAVEPOINT, sent as SQL rather than through Session.begin_nested(), which would
# RELEASE it when the field succeeds. The name may repeat: ROLLBACK TO finds the latest.
SAVEPOINT = "SAVEPOINT mutation_field"
Resolver = Callable[..., Awaitable[P]]


def mutation(
    payload: type[P], *, one_statement: bool = False
) -> Callable[[Resolver[P]], Resolver[P]]:
    """The resolver keeps its own signature (`info` first, then its arguments): strawberry reads
    the arguments from it through functools.wraps.

    `one_statement`: the resolver writes everything in one statement (DbSession.run), and
    raises its DomainErrors before that statement or from it, reading more only to explain a
    refusal (createTask). When that field is the operation's only one and its payload is at hand
    (no statement reads it), the request needs no transaction around the statement: it runs
    without BEGIN, SAVEPOINT or COMMIT, committing on its own on the primary's single-statement
    connections (Context.statements: Database.write_pool), so a row the write locks (the project's
    task counter) is held for that statement alone, as a hand-written endpoint holds it, and the
    request's session never takes a connection."""

    def decorate(resolve: Resolver[P]) -> Resolver[P]:
        @functools.wraps(resolve)
        async def run(info: strawberry.Info, *args: Any, **kwargs: Any) -> P:
            ctx: Context = info.context
            db = ctx.db
            alone = one_statement and _alone(info, ctx)
            if alone:
                assert ctx.statements is not None  # _alone
                db.autocommit(ctx.statements, commit_begins)
            else:
                async with db.lock:
                    connection = await db.session.connection()
                    await connection.exec_driver_sql(SAVEPOINT)
            try:
                result = await resolve(info, *args, **kwargs)
            except DomainError as exc:
                if not alone:  # alone: nothing was written (a failed statement wrote nothing)
                    await _roll_back(db)
                await ctx.run_kept_writes()  # after the rollback to the savepoint, so they stay
                ctx.loaders.clear()
                return payload(user_errors=[UserError.from_domain(exc)])
            except BaseException:
                # The operation is rolled back whole (the unit of work runs the kept writes
                # then), also when this cannot be (a lost connection): the original error is
                # the one to report.
                if not alone:
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


def _alone(info: strawberry.Info, ctx: Context) -> bool:
    """Whether this field may run without a transaction: the operation's only root field, on a
    session of the pool's that has not begun one (an Idempotency-Key claims its key in the
    transaction first), with the connection's own statement timeout (a nearer deadline or
    PgBouncer needs SET LOCAL, which needs a transaction) and a payload no statement reads."""
    raw: GraphQLResolveInfo[Any] = info._raw_info
    selections = raw.operation.selection_set.selections
    return (
        len(selections) == 1
        and isinstance(selections[0], FieldNode)
        and ctx.statements is not None
        and isinstance(ctx.db.session.bind, AsyncEngine)  # not a connection in a transaction
        and not ctx.db.session.in_transaction()
        and statement_timeout_ms(ctx) is None
        and payload_at_hand(raw)
    )


def payload_at_hand(info: GraphQLResolveInfo[Any]) -> bool:
    """Whether every field the payload's selection may include (whatever its directives say)
    is answered by the payload's objects themselves: __typename, userErrors, and of each object
    its columns, ids and computed fields that its object can answer (describe.answered_at_hand).
    Fragments on other types, references, lists and connections need the database."""
    payload_type = get_named_type(info.return_type)
    assert isinstance(payload_type, GraphQLObjectType)
    for node in _fields(info.field_nodes[0].selection_set, info.fragments):
        name = node.name.value
        if name in ("__typename", "userErrors"):
            continue
        field = payload_type.fields.get(name)
        object_type = get_named_type(field.type) if field is not None else None
        if not isinstance(object_type, GraphQLObjectType):
            return False
        for sub in _fields(node.selection_set, info.fragments):
            if sub.name.value == "__typename":
                continue
            if answered_at_hand(object_type.fields.get(sub.name.value)) is None:
                return False
    return True


def _fields(
    selection_set: SelectionSetNode | None, fragments: dict[str, FragmentDefinitionNode]
) -> Iterator[FieldNode]:
    """The fields of a selection set, through its fragments, included or not."""
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _fields(selection.selection_set, fragments)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            yield from _fields(fragment.selection_set if fragment else None, fragments)
