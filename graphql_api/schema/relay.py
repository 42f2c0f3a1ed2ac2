"""Relay plumbing: opaque global ids, the Node interface, cursor connections."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

import strawberry
from strawberry.types.nodes import SelectedField

from db import ids
from db.errors import InvalidInput, NotFound
from db.repositories.keyset import Page
from graphql_api.schema.describe import METADATA_KEY, ConnectionPart


def part() -> Any:
    return strawberry.field(metadata={METADATA_KEY: ConnectionPart()})


T = TypeVar("T")


def to_global_id(type_name: str, id: uuid.UUID) -> strawberry.ID:
    return strawberry.ID(ids.global_id(type_name, id))


def from_global_id(global_id: str) -> tuple[str, uuid.UUID] | None:
    """(type name, uuid), or None for anything that is not one of our ids."""
    return ids.parse_global_id(global_id)


def parse_id(global_id: str, type_name: str, field: list[str]) -> uuid.UUID:
    """An id argument that must name a `type_name`; a wrong or foreign id is simply not found."""
    parsed = from_global_id(global_id)
    if parsed is None or parsed[0] != type_name:
        raise NotFound(f"no {type_name} with id {global_id!r}", field=field)
    return parsed[1]


def parse_ids(global_ids: Sequence[str], type_name: str, field: list[str]) -> list[uuid.UUID]:
    return [parse_id(g, type_name, field) for g in global_ids]


def require_valid_id(global_id: str, field: list[str]) -> tuple[str, uuid.UUID]:
    parsed = from_global_id(global_id)
    if parsed is None:
        raise InvalidInput(f"{global_id!r} is not a valid id", field=field)
    return parsed


PAGE_FIELDS = frozenset({"edges", "nodes", "pageInfo"})


def page_requested(info: strawberry.Info) -> bool:
    """Whether the connection field being resolved selects anything but totalCount."""

    def walk(selections: list[Any]) -> bool:
        for selection in selections:
            if isinstance(selection, SelectedField):
                if selection.name in PAGE_FIELDS:
                    return True
            elif walk(selection.selections):  # fragment spreads and inline fragments
                return True
        return False

    return any(walk(field.selections) for field in info.selected_fields)


@strawberry.interface(description="An object with a globally unique, opaque id.")
class Node:
    id: strawberry.ID


# Every field below is part of a connection: answered by whichever path answers the
# connection (graphql_api/schema/describe.py, ConnectionPart).
@strawberry.type
class PageInfo:
    has_next_page: bool = part()
    has_previous_page: bool = part()
    start_cursor: str | None = part()
    end_cursor: str | None = part()


@strawberry.type
class Edge(Generic[T]):
    cursor: str = part()
    node: T = part()


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]] = part()
    nodes: list[T] = part()
    page_info: PageInfo = part()
    _count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(
        description="How many items the whole list holds, under the same filter.",
        metadata={METADATA_KEY: ConnectionPart()},
    )
    async def total_count(self) -> int:
        return await self._count()

    @classmethod
    def empty(cls) -> Connection[T]:
        async def zero() -> int:
            return 0

        return cls(
            edges=[],
            nodes=[],
            page_info=PageInfo(
                has_next_page=False, has_previous_page=False, start_cursor=None, end_cursor=None
            ),
            _count=zero,
        )

    @classmethod
    def from_page(
        cls,
        page: Page[Any],
        wrap: Callable[[Any], T],
        count: Callable[[], Awaitable[int]],
    ) -> Connection[T]:
        nodes = [wrap(item) for item in page.items]
        return cls(
            edges=[Edge(cursor=c, node=n) for c, n in zip(page.cursors, nodes, strict=True)],
            nodes=nodes,
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=page.has_previous_page,
                start_cursor=page.start_cursor,
                end_cursor=page.end_cursor,
            ),
            _count=count,
        )
