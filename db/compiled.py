"""A Core statement compiled once, to run as SQL text on a bare asyncpg connection.

SQLAlchemy runs a statement through its compiled cache (the key hashed on every call), an
execution context, a cursor and a result, switching greenlets on the way: most of the CPU of a
write that is one statement. `Compiled` keeps what that machinery computes once per statement
(the SQL text with $n parameters, which dict key each parameter is, the bind processors of the
parameters' types and the result processors of the columns) and applies it itself, so the values
sent and read are those SQLAlchemy would send and read (tests/test_compiled.py checks them).
A bare asyncpg connection needs `set_codecs` for that: SQLAlchemy's dialect decodes JSON
in asyncpg's codecs, not in the types' result processors.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import asyncpg
from sqlalchemy import Executable
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any] | None
_REQUIRED = object()  # a parameter the caller gives


@dataclass(frozen=True)
class Compiled:
    sql: str
    # Per $n: the parameter's key, its value when the statement carries it (a literal), and the
    # processor of its type.
    _params: tuple[tuple[str, Any, Processor], ...]
    # Per result column: its name and the processor of its type.
    _columns: tuple[tuple[str, Processor], ...]

    def args(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        """The positional arguments for `params`, which has every key of the statement's
        parameters but those with a value of their own (KeyError otherwise)."""
        values = []
        for key, fixed, process in self._params:
            value = params[key] if fixed is _REQUIRED or key in params else fixed
            values.append(value if process is None else process(value))
        return tuple(values)

    def row(self, record: Sequence[Any]) -> dict[str, Any]:
        """A result row by column name, its values as SQLAlchemy would give them."""
        return {
            name: value if process is None or value is None else process(value)
            for (name, process), value in zip(self._columns, record, strict=True)
        }


async def set_codecs(connection: asyncpg.Connection) -> None:
    """The JSON codecs SQLAlchemy's asyncpg dialect sets on its own connections: json and jsonb
    decoded by its deserializer (json.loads: db.engine sets no other); what is sent is text
    already, from the bind processors."""
    loads = json.loads
    await connection.set_type_codec(
        "json",
        encoder=str.encode,
        decoder=lambda raw: loads(raw.decode()),
        schema="pg_catalog",
        format="binary",
    )
    await connection.set_type_codec(
        "jsonb",
        encoder=lambda text: b"\x01" + text.encode(),  # jsonb's binary format: a version byte
        decoder=lambda raw: loads(raw[1:].decode()),
        schema="pg_catalog",
        format="binary",
    )


_CACHE: weakref.WeakKeyDictionary[Dialect, dict[Executable, Compiled]] = weakref.WeakKeyDictionary()


def compiled(statement: Executable, dialect: Dialect) -> Compiled:
    """`statement` compiled for `dialect`, once: for statements built once (functools.cache)."""
    by_statement = _CACHE.setdefault(dialect, {})
    found = by_statement.get(statement)
    if found is None:
        found = by_statement[statement] = _compile(statement, dialect)
    return found


def _compile(statement: Executable, dialect: Dialect) -> Compiled:
    assert isinstance(statement, ClauseElement)
    compiler = statement.compile(dialect=dialect)
    assert isinstance(compiler, SQLCompiler) and compiler.positiontup is not None
    assert not compiler.literal_execute_params and not compiler.post_compile_params, (
        "a statement whose SQL depends on its parameters' values (IN lists) cannot be compiled once"
    )
    processors = cast(dict[str, Processor], compiler._bind_processors)  # none is a tuple
    binds = compiler.binds  # by the name each has in the SQL
    params = tuple(
        (
            key,
            _REQUIRED if binds[key].required else binds[key].effective_value,
            processors.get(key),
        )
        for key in compiler.positiontup
    )
    columns = tuple(
        (column.keyname, column.type._cached_result_processor(dialect, None))
        for column in compiler._result_columns
    )
    return Compiled(compiler.string, params, columns)
