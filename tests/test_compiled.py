"""db/compiled.py sends and reads what SQLAlchemy would: the same SQL text and arguments for a
statement's parameters (enums, JSONB, arrays of enums, UUIDs, a literal the statement carries),
and the same values from its rows, on the session's connection and on a bare asyncpg one."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest
from sqlalchemy import ARRAY, Uuid, bindparam, event, func, literal, select, tuple_
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from db.compiled import compiled, set_codecs
from db.models import Membership, Role, Task, TaskStatus
from db.urls import asyncpg_dsn

STATEMENT = select(
    bindparam("status", type_=Task.__table__.c.status.type).label("status"),
    bindparam("doc", type_=JSONB).label("doc"),
    bindparam("roles", type_=ARRAY(Membership.role.type)).label("roles"),
    bindparam("id", type_=Uuid()).label("id"),
    bindparam("ids", type_=ARRAY(Uuid())).label("ids"),
    literal("fixed").label("fixed"),
    (literal(40) + bindparam("n", type_=Task.__table__.c.number.type)).label("sum"),
)
PARAMS: dict[str, Any] = {
    "status": TaskStatus.IN_PROGRESS,
    "doc": {"a": [1, None, "é"], "b": {"c": True}},
    "roles": [Role.ADMIN, Role.OWNER],
    "id": uuid.UUID("0190f6b4-0000-7000-8000-000000000001"),
    "ids": [uuid.UUID(int=1), uuid.UUID(int=2)],
    "n": 2,
}
EXPECTED = {
    "status": TaskStatus.IN_PROGRESS,
    "doc": {"a": [1, None, "é"], "b": {"c": True}},
    "roles": [Role.ADMIN, Role.OWNER],
    "id": PARAMS["id"],
    "ids": PARAMS["ids"],
    "fixed": "fixed",
    "sum": 42,
}


async def test_sends_what_sqlalchemy_sends_and_reads_what_it_reads(
    connection: AsyncConnection,
) -> None:
    sent: list[tuple[str, Any]] = []

    def before(conn: Any, cursor: Any, sql: str, parameters: Any, *args: Any) -> None:
        sent.append((sql, parameters))

    event.listen(connection.sync_connection, "before_cursor_execute", before)
    try:
        theirs = (await connection.execute(STATEMENT, PARAMS)).one()._asdict()
    finally:
        event.remove(connection.sync_connection, "before_cursor_execute", before)
    query = compiled(STATEMENT, connection.dialect)
    assert sent == [(query.sql, tuple(query.args(PARAMS)))] or sent == [
        (query.sql, list(query.args(PARAMS)))
    ]
    assert theirs == EXPECTED
    ours = query.row((await connection.exec_driver_sql(query.sql, query.args(PARAMS))).one())
    assert ours == theirs
    assert [type(v) for v in ours.values()] == [type(v) for v in theirs.values()]


async def test_reads_the_same_on_a_bare_asyncpg_connection(
    connection: AsyncConnection, database_url: str
) -> None:
    """The single-statement pool's connections (graphql_api/pools.py), with set_codecs."""
    query = compiled(STATEMENT, connection.dialect)
    bare = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        (plain,) = await bare.fetch(query.sql, *query.args(PARAMS))
        await set_codecs(bare)
        (record,) = await bare.fetch(query.sql, *query.args(PARAMS))
    finally:
        await bare.close()
    assert query.row(record) == EXPECTED
    assert isinstance(query.row(plain)["doc"], str)  # asyncpg's own codec: why set_codecs


async def test_compiled_once_per_statement_and_dialect(connection: AsyncConnection) -> None:
    assert compiled(STATEMENT, connection.dialect) is compiled(STATEMENT, connection.dialect)


def test_a_missing_parameter_is_an_error_not_a_null(connection: AsyncConnection) -> None:
    query = compiled(STATEMENT, connection.dialect)
    with pytest.raises(KeyError):
        query.args({k: v for k, v in PARAMS.items() if k != "id"})


def test_a_statement_whose_sql_depends_on_its_values_is_refused(
    connection: AsyncConnection,
) -> None:
    """An IN list is rendered per call: SQL text compiled once cannot serve it."""
    statement = select(Task.id).where(tuple_(Task.id).in_(bindparam("ids", expanding=True)))
    with pytest.raises(AssertionError, match="cannot be compiled once"):
        compiled(statement, connection.dialect)


def test_counts_each_parameter_once_where_the_sql_repeats_it(connection: AsyncConnection) -> None:
    statement = select(bindparam("x", type_=Uuid()).label("a"), func.coalesce(bindparam("x")))
    query = compiled(statement, connection.dialect)
    assert query.args({"x": PARAMS["id"]}) == (PARAMS["id"],)
