"""SQL text pieces for the fast path, and embedding SQLAlchemy statements with their parameters."""

from __future__ import annotations

import enum
import re
from typing import Any

from sqlalchemy import Select
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect

from db.repositories.keyset import KeysetOrder, SortKey

DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]
_PARAM = re.compile(r"\$(\d+)")


class Params:
    """The statement's positional parameters ($1, $2, ...), in order."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
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


def quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def iso(expr: str) -> str:
    """A timestamptz as Python's datetime.isoformat() writes it in UTC (what the resolvers send)."""
    utc = f"({expr} AT TIME ZONE 'UTC')"
    return (
        f"(to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN "
        f"extract(microseconds FROM {expr})::bigint % 1000000 <> 0 THEN to_char({utc}, '.US') "
        f"ELSE '' END || '+00:00')"
    )


def global_id(type_name: str, expr: str) -> str:
    """base64url("<Type>:<uuid>"), like relay.to_global_id; short enough to need no line breaks."""
    text = f"{quote(type_name + ':')} || {expr}::text"
    return f"translate(encode(convert_to({text}, 'UTF8'), 'base64'), '+/', '-_')"


def _cursor_value(key: SortKey, alias: str) -> str:
    col = f"{alias}.{key.attr}"
    kind = key.python_type
    if kind is int:
        text = f"{col}::text"
    elif kind.__name__ == "datetime":
        text = "'\"' || " + iso(col) + " || '\"'"
    else:  # uuid and enums: their text form
        text = f"'\"' || {col}::text || '\"'"
    return f"coalesce({text}, 'null')" if key.nullable else text


def cursor(order: KeysetOrder, alias: str) -> str:
    """The cursor KeysetOrder.cursor_for would make for this row: base64url of the JSON array
    [order name, key values...], unpadded."""
    parts = " || ',' || ".join(_cursor_value(k, alias) for k in order.keys)
    text = f"'[\"{order.name}\",' || {parts} || ']'"
    return (
        f"rtrim(translate(replace(encode(convert_to({text}, 'UTF8'), 'base64'), E'\\n', ''), "
        f"'+/', '-_'), '=')"
    )


def order_by(order: KeysetOrder, alias: str, reverse: bool) -> str:
    clauses = []
    for key in order.keys:
        desc = key.descending != reverse
        clause = f"{alias}.{key.attr} {'DESC' if desc else 'ASC'}"
        if key.nullable:
            clause += " NULLS FIRST" if reverse else " NULLS LAST"
        clauses.append(clause)
    return ", ".join(clauses)


class Unsupported(Exception):
    """The operation uses something the fast path does not compile: the resolvers answer it."""


MAX_KEYS = 50  # json_build_object takes at most 100 arguments


def json_object(pairs: list[tuple[str, str]]) -> str:
    if len(pairs) > MAX_KEYS:
        raise Unsupported("too many fields in one object")
    return "json_build_object(" + ", ".join(f"{quote(k)}, {v}" for k, v in pairs) + ")"
