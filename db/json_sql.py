"""The SQL text of a compiled read: statements embedded with their parameters, and the JSON that
nests them (objects, lists, single objects, role guards, ordered lookups, the root).

The fast path (graphql_api/fast/) writes no SQL of its own: it chooses which of these to nest,
over the repositories' statements and the value encodings beside their Python twins
(db/encodings.py, db/ids.py, db/repositories/keyset.py, db/errors.py).
tests/test_json_sql.py runs each builder in PostgreSQL and checks the JSON it makes.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, literal_column
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect

from db.encodings import sql_literal
from db.errors import refused_sql

DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]
_PARAM = re.compile(r"\$(\d+)")

JSON_NULL = "null"  # SQL's NULL, which json_build_object and json_agg write as null
EMPTY_JSON_LIST = "'[]'::json"
MAX_KEYS = 50  # json_build_object takes at most 100 arguments


class TooManyKeys(Exception):
    """An object of more than MAX_KEYS keys, which one json_build_object cannot build."""


class Params:
    """The statement's positional parameters ($1, $2, ...), in order."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
        """A placeholder for `value`, bound with the statement."""
        self.values.append(_plain(value))
        return f"${len(self.values)}"

    def embed(self, stmt: Select[Any]) -> str:
        """A SQLAlchemy statement as SQL text, its parameters renumbered after ours: the same
        statement the repositories run, so the fast path filters, scopes and pages identically."""
        compiled = stmt.compile(dialect=DIALECT, compile_kwargs={"render_postcompile": True})
        values = compiled.construct_params()
        offset = len(self.values)
        self.values += [_plain(values[name]) for name in compiled.positiontup or ()]
        return _PARAM.sub(lambda m: f"${int(m.group(1)) + offset}", compiled.string)


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


# -- rows and columns ---------------------------------------------------------------------
def row_alias(n: int) -> str:
    """The name of the n-th row source a statement nests (x1, x2, ...)."""
    return f"x{n}"


def column_sql(alias: str, column: str) -> str:
    """A column of the row source `alias`, as SQL text."""
    return f"{alias}.{column}"


def column_of(alias: str, column: str) -> ColumnElement[Any]:
    """column_sql as an expression a repository statement can compare with (`id = x1.id`)."""
    return literal_column(column_sql(alias, column))


def scalar_subquery(stmt_sql: str) -> str:
    """The one value of a statement's one row (NULL for none), as an expression."""
    return f"({stmt_sql})"


def derived(stmt_sql: str, alias: str) -> str:
    """A statement as the FROM item `alias`."""
    return f"({stmt_sql}) AS {alias}"


def json_select(value_sql: str, from_item: str | None = None) -> str:
    """`value_sql` as an expression: evaluated once, or over the rows of `from_item`."""
    if from_item is None:
        return f"(SELECT {value_sql})"
    return f"(SELECT {value_sql} FROM {from_item})"


# -- JSON ---------------------------------------------------------------------------------
def json_object(pairs: Sequence[tuple[str, str]]) -> str:
    """A JSON object of (key, SQL value) pairs, keys in the given order."""
    if len(pairs) > MAX_KEYS:
        raise TooManyKeys(f"{len(pairs)} fields in one object")
    return "json_build_object(" + ", ".join(f"{sql_literal(k)}, {v}" for k, v in pairs) + ")"


def json_single(object_sql: str, stmt_sql: str, alias: str) -> str:
    """`object_sql` over the row of `stmt_sql` (aliased `alias`): JSON null when it has none.
    The statement returns at most one row (a lookup by key)."""
    return json_select(object_sql, derived(stmt_sql, alias))


def _or_empty_list(list_sql: str) -> str:
    return f"coalesce({list_sql}, {EMPTY_JSON_LIST})"


def json_list(item_sql: str, stmt_sql: str, alias: str) -> str:
    """A JSON array of `item_sql` for each row of `stmt_sql` (aliased `alias`), in the
    statement's order; [] when it has none."""
    return _or_empty_list(json_select(f"json_agg({item_sql})", derived(stmt_sql, alias)))


def guarded(allowed_sql: str, answer_sql: str, reason: str) -> str:
    """`answer_sql` where the statement `allowed_sql` (a boolean, e.g. an EXISTS over the
    viewer's membership) is true; otherwise the statement raises a refusal (db/errors.py)."""
    return f"(CASE WHEN ({allowed_sql}) THEN {answer_sql} ELSE {refused_sql(reason)} END)"


_REFUSAL = refused_sql("").partition("(")[0] + "("


def may_refuse(statement_sql: str) -> bool:
    """Whether a statement holds a role guard, which raises a refusal where it fails."""
    return _REFUSAL in statement_sql


# -- ordered lookups (nodes(ids:)) ---------------------------------------------------------
def unnested_id(alias: str) -> ColumnElement[Any]:
    """The id of the current item of ordered_unnest `alias`, for the lookups' statements."""
    return column_of(alias, "id")


def ordered_unnest(
    alias: str, kinds_param: str, ids_param: str, answers: Sequence[tuple[str, str]]
) -> str:
    """A JSON array with one item for each (kind, id) of two parallel array parameters (text[]
    and uuid[]), in their order: the answer of the item's kind (SQL over `unnested_id(alias)`),
    JSON null for a kind with none. Each answer appears once, whatever the number of ids."""
    kind = column_sql(alias, "kind")
    whens = " ".join(f"WHEN {sql_literal(k)} THEN {answer}" for k, answer in answers)
    item = f"CASE {kind} {whens} END" if answers else f"{JSON_NULL}::json"
    items = f"json_agg({item} ORDER BY {column_sql(alias, 'n')})"
    arrays = f"unnest({kinds_param}::text[], {ids_param}::uuid[])"
    source = f"{arrays} WITH ORDINALITY AS {alias}(kind, id, n)"
    return _or_empty_list(json_select(items, source))


# -- the statement ------------------------------------------------------------------------
def text_root(object_sql: str) -> str:
    """The statement: its one row holds `object_sql` as JSON text, which the server passes
    through to the response unparsed."""
    return f"SELECT {object_sql}::text"
