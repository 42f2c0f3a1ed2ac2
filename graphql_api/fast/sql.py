"""Embedding SQLAlchemy statements with their parameters, and JSON objects, for the fast path.
The encodings of values (ids, timestamps, cursors, orderings, literals) live in db/."""

from __future__ import annotations

import enum
import re
from typing import Any

from sqlalchemy import Select
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect

from db.encodings import sql_literal

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


class Unsupported(Exception):
    """The operation uses something the fast path does not compile: the resolvers answer it."""


MAX_KEYS = 50  # json_build_object takes at most 100 arguments


def json_object(pairs: list[tuple[str, str]]) -> str:
    if len(pairs) > MAX_KEYS:
        raise Unsupported("too many fields in one object")
    return "json_build_object(" + ", ".join(f"{sql_literal(k)}, {v}" for k, v in pairs) + ")"
