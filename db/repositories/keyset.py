"""Keyset (cursor) pagination over any ordering, nullable keys included. Never OFFSET.

An ordering is a list of sort keys ending with a unique one (the id). A cursor carries the name of
its ordering and the sort-key values of one row; "after" and "before" become row predicates that
an index on the same columns can serve. Nullable keys sort NULLS LAST in both directions.
"""

from __future__ import annotations

import base64
import binascii
import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson
from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    false,
    literal,
    or_,
    tuple_,
)
from sqlalchemy.orm import QueryableAttribute

from db.encodings import iso_sql, iso_text
from db.errors import InvalidInput
from db.values import storable_datetime, storable_int4, unstorable_text

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


# A mapped attribute (Task.due_at) or any column expression.
KeyColumn = ColumnElement[Any] | QueryableAttribute[Any]


@dataclass(frozen=True)
class SortKey:
    column: KeyColumn
    attr: str
    descending: bool = False
    nullable: bool = False

    @property
    def python_type(self) -> type:
        return self.column.type.python_type

    def order_by(self, reverse: bool) -> ColumnElement[Any]:
        desc = self.descending != reverse
        clause = self.column.desc() if desc else self.column.asc()
        if self.nullable:
            # NULLS LAST in the requested direction, so NULLS FIRST when walking it backwards.
            clause = clause.nulls_first() if reverse else clause.nulls_last()
        return clause

    def beyond(self, value: Any, reverse: bool) -> ColumnElement[bool]:
        """Rows strictly past `value` in walking order (reverse walks the ordering backwards)."""
        col = self.column
        if value is None:
            # Only nullable keys hold None; NULLs sort last, so nothing non-null comes after one.
            return col.is_not(None) if reverse else false()
        going_down = self.descending != reverse
        past = (col < value) if going_down else (col > value)
        if self.nullable and not reverse:
            return or_(past, col.is_(None))
        return past  # type: ignore[no-any-return]

    def equals(self, value: Any) -> ColumnElement[bool]:
        return self.column.is_(None) if value is None else self.column == value

    def order_by_sql(self, alias: str, reverse: bool) -> str:
        """order_by as SQL text over a row alias that has this key as column `attr`."""
        desc = self.descending != reverse
        clause = f"{alias}.{self.attr} {'DESC' if desc else 'ASC'}"
        if self.nullable:
            clause += " NULLS FIRST" if reverse else " NULLS LAST"
        return clause

    def cursor_value_sql(self, alias: str) -> str:
        """This key's value as JSON text, as _encode and orjson write it into a cursor."""
        return self.cursor_value_of(f"{alias}.{self.attr}")

    def cursor_value_of(self, col: str) -> str:
        """cursor_value_sql of an expression holding this key's value."""
        kind = self.python_type
        if kind is int:
            text = f"{col}::text"
        elif kind is datetime:
            text = "'\"' || " + iso_sql(col) + " || '\"'"
        elif kind is uuid.UUID or issubclass(kind, enum.Enum):  # their text form needs no escapes
            text = f"'\"' || {col}::text || '\"'"
        else:
            raise TypeError(f"no cursor SQL for {kind.__name__} keys")
        return f"coalesce({text}, 'null')" if self.nullable else text


@dataclass(frozen=True)
class KeysetOrder:
    name: str
    keys: tuple[SortKey, ...]

    def order_by(self, reverse: bool = False) -> list[ColumnElement[Any]]:
        return [key.order_by(reverse) for key in self.keys]

    def order_by_sql(self, alias: str, reverse: bool = False) -> str:
        """order_by as SQL text, over a row alias holding the keys as columns."""
        return ", ".join(key.order_by_sql(alias, reverse) for key in self.keys)

    def predicate(self, values: Sequence[Any], reverse: bool) -> ColumnElement[bool]:
        simple = (
            all(not k.nullable for k in self.keys) and len({k.descending for k in self.keys}) == 1
        )
        if simple:
            # A row-value comparison, which PostgreSQL answers with one index range scan.
            cols = tuple_(*(k.column for k in self.keys))
            vals = tuple_(
                *(literal(v, k.column.type) for k, v in zip(self.keys, values, strict=True))
            )
            go_down = self.keys[0].descending != reverse
            return cols < vals if go_down else cols > vals
        clauses = []
        for i, key in enumerate(self.keys):
            prefix = [k.equals(v) for k, v in zip(self.keys[:i], values[:i], strict=True)]
            clauses.append(and_(*prefix, key.beyond(values[i], reverse)))
        return or_(*clauses)

    def cursor_for(self, item: Any) -> str:
        values = [_encode(getattr(item, key.attr)) for key in self.keys]
        raw = orjson.dumps([self.name, *values])
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def cursor_sql(self, alias: str) -> str:
        """cursor_for in SQL, over a row alias holding the keys as columns: base64url of the
        JSON array [order name, key values...], unpadded."""
        return self.cursor_of([f"{alias}.{k.attr}" for k in self.keys])

    def cursor_of(self, values: list[str]) -> str:
        """cursor_sql of expressions holding the keys' values, in the keys' order."""
        parts = " || ',' || ".join(
            k.cursor_value_of(v) for k, v in zip(self.keys, values, strict=True)
        )
        text = f"'[\"{self.name}\",' || {parts} || ']'"
        return (
            f"rtrim(translate(replace(encode(convert_to({text}, 'UTF8'), 'base64'), E'\\n', ''), "
            f"'+/', '-_'), '=')"
        )

    def decode_cursor(self, cursor: str) -> list[Any]:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            data = orjson.loads(raw)
            if (
                not isinstance(data, list)
                or len(data) != len(self.keys) + 1
                or data[0] != self.name
            ):
                raise ValueError
            return [_decode(v, k.python_type) for k, v in zip(self.keys, data[1:], strict=True)]
        except (ValueError, TypeError, KeyError, binascii.Error, orjson.JSONDecodeError):
            # Forged or damaged: wrong shape, types, ranges or text PostgreSQL cannot hold.
            raise InvalidInput(
                "cursor is not valid for this list and ordering", field=["cursor"]
            ) from None


@dataclass(frozen=True)
class PageArgs:
    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None

    def validated(self) -> PageArgs:
        if self.first is not None and self.last is not None:
            raise InvalidInput("pass either first or last, not both", field=["last"])
        for name in ("first", "last"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= MAX_PAGE_SIZE:
                raise InvalidInput(f"{name} must be between 0 and {MAX_PAGE_SIZE}", field=[name])
        return self

    @property
    def backwards(self) -> bool:
        return self.last is not None or (self.before is not None and self.first is None)

    @property
    def size(self) -> int:
        size = self.last if self.backwards else self.first
        return DEFAULT_PAGE_SIZE if size is None else size


@dataclass
class Page(Generic[T]):
    items: list[T]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool

    @property
    def start_cursor(self) -> str | None:
        return self.cursors[0] if self.cursors else None

    @property
    def end_cursor(self) -> str | None:
        return self.cursors[-1] if self.cursors else None


def paginate_statement(stmt: Select[Any], order: KeysetOrder, args: PageArgs) -> Select[Any]:
    """The statement for one page: filtered by the cursors, ordered, limited to size + 1."""
    args = args.validated()
    reverse = args.backwards
    if args.after is not None:
        stmt = stmt.where(order.predicate(order.decode_cursor(args.after), reverse=False))
    if args.before is not None:
        stmt = stmt.where(order.predicate(order.decode_cursor(args.before), reverse=True))
    return stmt.order_by(*order.order_by(reverse)).limit(fetch_size(args))


def fetch_size(args: PageArgs) -> BindParameter[int]:
    """How many rows a page reads: its size and one more, which tells whether there is a next
    page. Written into the SQL text, not bound: with a bound LIMIT PostgreSQL cannot cost a
    generic plan and re-plans the prepared statement on every execution (a third of the board
    query's time, measured); page sizes are few, so the texts stay few."""
    return bindparam("fetch_size", args.size + 1, type_=Integer, literal_execute=True)


def build_page(rows: Sequence[T], order: KeysetOrder, args: PageArgs) -> Page[T]:
    """Rows come from `paginate_statement`: one more than the page size tells whether more exist."""
    size = args.size
    items = list(rows[:size])
    more = len(rows) > size
    if args.backwards:
        items.reverse()
        return Page(items, [order.cursor_for(i) for i in items], args.before is not None, more)
    return Page(items, [order.cursor_for(i) for i in items], more, args.after is not None)


@dataclass(frozen=True)
class PageSql:
    """build_page in SQL: over the rows of `paginate_statement` (one more than the page size),
    numbered in page order by `rows()` as column _n of `alias`; aggregates keep the page's rows
    only and put them in the order build_page returns them."""

    order: KeysetOrder
    args: PageArgs
    alias: str

    def rows(self, paginated_sql: str) -> str:
        """The FROM item: the fetched rows, numbered."""
        by = self.order.order_by_sql("s", self.args.backwards)
        return (
            f"(SELECT s.*, row_number() OVER (ORDER BY {by}) AS _n "
            f"FROM ({paginated_sql}) AS s) AS {self.alias}"
        )

    def _in_page(self) -> str:
        order = f"{self.alias}._n DESC" if self.args.backwards else f"{self.alias}._n"
        return f"ORDER BY {order}) FILTER (WHERE {self.alias}._n <= {self.args.size})"

    def items_json(self, item_sql: str) -> str:
        """A JSON array of `item_sql` for each row of the page."""
        return f"coalesce(json_agg({item_sql} {self._in_page()}, '[]'::json)"

    def cursor(self) -> str:
        return self.order.cursor_sql(self.alias)

    def _edge_cursor(self, first: bool) -> str:
        """The cursor of the page's first or last row, written once from that row's keys (not
        a cursor per row of the page, of which one is kept). An empty page has null keys, and
        every ordering ends with the id, never null: its cursor is null."""
        ascending = self.args.backwards != first
        order = f"{self.alias}._n" + ("" if ascending else " DESC")
        kept = f"FILTER (WHERE {self.alias}._n <= {self.args.size})"
        keys = [
            f"(array_agg({self.alias}.{k.attr} ORDER BY {order}) {kept})[1]"
            for k in self.order.keys
        ]
        return self.order.cursor_of(keys)

    def start_cursor(self) -> str:
        return self._edge_cursor(first=True)

    def end_cursor(self) -> str:
        return self._edge_cursor(first=False)

    def _more(self) -> str:
        return f"(count(*) > {self.args.size})"

    def has_next_page(self) -> str:
        if self.args.backwards:
            return "true" if self.args.before is not None else "false"
        return self._more()

    def has_previous_page(self) -> str:
        if self.args.backwards:
            return self._more()
        return "true" if self.args.after is not None else "false"


def count_sql(stmt_sql: str) -> str:
    """How many rows a statement returns (totalCount without a cheaper source)."""
    return f"(SELECT count(*) FROM ({stmt_sql}) AS c)"


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_text(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _decode(value: Any, python_type: type) -> Any:
    if value is None:
        return None
    if python_type is datetime and isinstance(value, str):
        return storable_datetime(datetime.fromisoformat(value))
    if python_type is uuid.UUID and isinstance(value, str):
        return uuid.UUID(value)
    if issubclass(python_type, enum.Enum):
        return python_type(value)
    if python_type is int and isinstance(value, int) and not isinstance(value, bool):
        return storable_int4(value)
    if python_type is str and isinstance(value, str) and not unstorable_text(value):
        return value
    raise ValueError(value)


__all__ = ["KeysetOrder", "Page", "PageArgs", "SortKey", "build_page", "paginate_statement"]
