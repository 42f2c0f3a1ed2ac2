"""The resolvers of described fields (graphql_api/schema/describe.py), derived from their
descriptions: references through the by-id DataLoaders, lists through their loader, connections
through the batched connection loader, with the role checks the description names."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import strawberry
from strawberry.types.field import StrawberryField

from graphql_api import policy
from graphql_api.context import Context
from graphql_api.schema.describe import (
    METADATA_KEY,
    Args,
    Children,
    Description,
    Lookup,
    Reference,
    Related,
)
from graphql_api.schema.relay import Connection, page_requested


def described(spec: Description, *, description: str | None = None) -> Any:
    """A field answered from its description, declared on a stub that gives its GraphQL
    arguments and type (`async def f(self, info, ...) -> T: ...`): the resolver is `resolve`."""

    def declare(stub: Callable[..., Any]) -> StrawberryField:
        @functools.wraps(stub)
        async def resolver(self: Any, info: strawberry.Info, **args: Any) -> Any:
            return await resolve(spec, self, info, args)

        declared: StrawberryField = strawberry.field(
            resolver=resolver, description=description, metadata={METADATA_KEY: spec}
        )
        return declared

    return declare


def object_type(info: strawberry.Info, name: str) -> Any:
    """The Python class of the object type `name` (its from_model wraps rows)."""
    definition = info.schema.get_type_by_name(name)
    assert definition is not None, name
    return definition.origin  # type: ignore[union-attr]


async def resolve(spec: Description, root: Any, info: strawberry.Info, args: Args) -> Any:
    ctx: Context = info.context
    row = root._model
    if isinstance(spec, Reference):
        key = getattr(row, spec.column)
        if key is None:
            return None
        found = await ctx.loaders.by_id(spec.repository).load(key)
        return object_type(info, spec.target).from_model(found) if found is not None else None
    if isinstance(spec, Lookup):
        repo = spec.repository(ctx.db, ctx.scope)
        rows = await ctx.db.scalars(spec.statement(repo, row.id, args))
        return object_type(info, spec.target).from_model(rows[0]) if rows else None
    if isinstance(spec, Related):
        wrap = object_type(info, spec.target).from_model
        return [wrap(item) for item in await getattr(ctx.loaders, spec.loader).load(row.id)]
    if isinstance(spec, Children):
        return await children(spec, row, info, args)
    raise TypeError(f"{type(spec).__name__} has no derived resolver")


async def children(spec: Children, row: Any, info: strawberry.Info, args: Args) -> Connection[Any]:
    ctx: Context = info.context
    variant = spec.variant(args)  # first: it validates the arguments
    action = spec.guard(args)
    if action is not None:
        policy.require(await ctx.loaders.roles.load(getattr(row, spec.workspace_attr)), action)
    count = None
    if spec.total is not None:
        batched = spec.total[1]
        count = lambda repo, ids: batched(repo, args, ids)  # noqa: E731
    return await ctx.loaders.connection(
        f"{info._raw_info.parent_type.name}.{info.field_name}",
        row.id,
        spec.page(args),
        repository=spec.repository,
        statement=lambda repo: spec.statement(repo, args),
        parent=spec.parent,
        order=spec.order(args),
        wrap=object_type(info, spec.target).from_model,
        filter_key=variant,
        with_page=page_requested(info),
        count=count,
    )
