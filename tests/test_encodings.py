"""Every SQL encoding in db/ against its Python twin: each SQL form is evaluated in PostgreSQL
over sample values (edge cases included) and must equal what the Python form makes of them."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from db.encodings import (
    enum_sql,
    enum_text,
    iso_sql,
    iso_text,
    sql_literal,
    task_identifier,
    task_identifier_sql,
)
from db.ids import (
    MAX_TYPE_NAME,
    global_id,
    global_id_of_sql,
    global_id_sql,
    parse_global_id,
    uuid7,
)
from db.models.enums import Role, TaskPriority, TaskStatus
from db.repositories.audit_events import AUDIT_ORDER
from db.repositories.comments import COMMENT_ORDER
from db.repositories.keyset import KeysetOrder
from db.repositories.labels import LABEL_ORDER
from db.repositories.projects import PROJECT_ORDER
from db.repositories.tasks import TASK_ORDERS
from db.repositories.workspaces import MEMBERSHIP_ORDER, WORKSPACE_ORDER
from db.values import EARLIEST, LATEST

PG = postgresql.dialect()  # type: ignore[no-untyped-call]

TEXTS = [
    "",
    "a",
    "it's",
    "''",
    "'; DROP TABLE tasks; --",
    "back\\slash",
    "\\'",
    "new\nline\ttab",
    "$1 :name %s",
    'double "quotes"',
    "ünïcødé ✓ 漢字 🎉",
    "E'x'",
]

DATETIMES = [
    EARLIEST,
    LATEST,
    datetime(1, 1, 2, 0, 0, 0, 1, tzinfo=UTC),
    datetime(9999, 12, 30, 0, 0, 0, tzinfo=UTC),
    datetime(2026, 1, 31, 9, 0, 0, tzinfo=UTC),  # microseconds zero
    datetime(2026, 1, 31, 9, 0, 0, 1, tzinfo=UTC),
    datetime(2026, 1, 31, 9, 0, 0, 10, tzinfo=UTC),
    datetime(2026, 1, 31, 9, 0, 0, 500000, tzinfo=UTC),
    datetime(2026, 1, 31, 9, 0, 0, 999999, tzinfo=UTC),
    datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC),
    datetime(2026, 6, 1, 0, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(2026, 6, 1, 22, 0, 0, 42, tzinfo=timezone(timedelta(hours=-11))),
]

UUIDS = [
    uuid.UUID(int=0),
    uuid.UUID(int=1),
    uuid.UUID("00000000-0000-7000-8000-000000000001"),
    uuid.UUID("000000ab-0cde-4f00-8000-00000000000f"),
    uuid.UUID("0190c0de-0000-7abc-9def-0123456789ab"),
    uuid.UUID(int=(1 << 128) - 1),
    uuid.UUID("12345678-9abc-4def-8123-456789abcdef"),
    uuid7(),
    uuid.uuid4(),
]

INTS = [0, 1, 9, 10, 42, 999, 2**31 - 1]

TYPE_NAMES = ["User", "Workspace", "Project", "Task", "Label", "Comment", "AuditEvent"]

ENUMS: list[tuple[type[enum.Enum], str]] = [
    (Role, "role"),
    (TaskStatus, "task_status"),
    (TaskPriority, "task_priority"),
]

ORDERS: list[KeysetOrder] = [
    WORKSPACE_ORDER,
    MEMBERSHIP_ORDER,
    PROJECT_ORDER,
    LABEL_ORDER,
    COMMENT_ORDER,
    AUDIT_ORDER,
    *TASK_ORDERS.values(),
]


async def scalar(connection: AsyncConnection, sql: str) -> Any:
    return (await connection.exec_driver_sql(f"SELECT {sql}")).scalar_one()


def ts_sql(value: datetime | None) -> str:
    return (
        "NULL::timestamptz" if value is None else f"{sql_literal(value.isoformat())}::timestamptz"
    )


async def test_sql_literal_reads_back_as_the_text(connection: AsyncConnection) -> None:
    for value in TEXTS:
        assert await scalar(connection, sql_literal(value)) == value, value
        # As json_object writes keys: the literal is a JSON object key.
        obj = await scalar(connection, f"json_build_object({sql_literal(value)}, 1)::text")
        assert orjson.loads(obj) == {value: 1}


@pytest.mark.parametrize("session_zone", ["UTC", "America/St_Johns", "Asia/Kathmandu"])
async def test_iso_sql_equals_iso_text(connection: AsyncConnection, session_zone: str) -> None:
    """Whatever the session's time zone, the SQL form writes what the DateTime scalar sends
    for the value the driver reads back (in UTC)."""
    await connection.execute(text(f"SET LOCAL TIME ZONE {sql_literal(session_zone)}"))
    for value in DATETIMES:
        row = (
            await connection.execute(
                text(f"SELECT {iso_sql('v')}, v FROM (SELECT {ts_sql(value)} AS v) AS s")
            )
        ).one()
        sql_form, read_back = row
        assert read_back == value
        assert sql_form == iso_text(read_back) == iso_text(value.astimezone(UTC)), value
    assert await scalar(connection, iso_sql("NULL::timestamptz")) is None


async def test_global_id_sql_equals_global_id(connection: AsyncConnection) -> None:
    longest = "X" * MAX_TYPE_NAME
    for type_name in [*TYPE_NAMES, longest]:
        for id in UUIDS:
            expr = global_id_sql(type_name, f"{sql_literal(str(id))}::uuid")
            sql_form = await scalar(connection, expr)
            assert sql_form == global_id(type_name, id), (type_name, id)
            assert parse_global_id(sql_form) == (type_name, id)
    with pytest.raises(ValueError):
        global_id_sql(longest + "X", "x.id")
    # The type name from a column (AuditEvent.entityId), of any length.
    for type_name in [*TYPE_NAMES, longest, longest * 3, "Ünïcode"]:
        for id in UUIDS:
            expr = global_id_of_sql(sql_literal(type_name), f"{sql_literal(str(id))}::uuid")
            assert await scalar(connection, expr) == global_id(type_name, id), (type_name, id)


async def test_task_identifier_sql_equals_task_identifier(connection: AsyncConnection) -> None:
    keys = ["WEB", "A", "A1", "X9Y", "ABC123", "ABCDEFGHIJ"]
    for key in keys:
        for number in INTS:
            sql = task_identifier_sql(f"{sql_literal(key)}::text", f"{number}::integer")
            assert await scalar(connection, sql) == task_identifier(key, number)


async def test_enum_sql_equals_enum_text(connection: AsyncConnection) -> None:
    for python_enum, pg_name in ENUMS:
        labels = await scalar(connection, f"enum_range(NULL::{pg_name})::text[]")
        # Same members, same order (their order is the sort order of PRIORITY).
        assert labels == [m.name for m in python_enum]
        for member in python_enum:
            expr = enum_sql(f"{sql_literal(member.name)}::{pg_name}")
            obj = await scalar(connection, f"json_build_object('v', {expr})::text")
            assert orjson.loads(obj) == {"v": enum_text(member)}


def key_samples(python_type: type, nullable: bool) -> list[Any]:
    samples: list[Any]
    if python_type is datetime:
        samples = [d.astimezone(UTC) for d in DATETIMES]
    elif python_type is uuid.UUID:
        samples = list(UUIDS)
    elif python_type is int:
        samples = list(INTS)
    else:
        assert issubclass(python_type, enum.Enum)
        samples = list(python_type)
    return [None, *samples] if nullable else samples


def value_sql(value: Any, pg_type: str) -> str:
    if value is None:
        return f"NULL::{pg_type}"
    if isinstance(value, enum.Enum):
        return f"{sql_literal(value.name)}::{pg_type}"
    if isinstance(value, datetime):
        return ts_sql(value)
    return f"{sql_literal(str(value))}::{pg_type}"


def order_rows(order: KeysetOrder) -> list[dict[str, Any]]:
    """Rows that together take every sample value of every key (NULLs included)."""
    samples = [key_samples(k.python_type, k.nullable) for k in order.keys]
    count = max(len(s) for s in samples)
    return [
        {
            k.attr: s[(i * (j + 1)) % len(s)]
            for j, (k, s) in enumerate(zip(order.keys, samples, strict=True))
        }
        for i in range(count)
    ]


async def test_cursor_sql_equals_cursor_for(connection: AsyncConnection) -> None:
    compared = 0
    for order in ORDERS:
        pg_types = [k.column.type.compile(dialect=PG) for k in order.keys]
        for row in order_rows(order):
            columns = ", ".join(
                f"{value_sql(row[k.attr], t)} AS {k.attr}"
                for k, t in zip(order.keys, pg_types, strict=True)
            )
            sql = f"{order.cursor_sql('r')} FROM (SELECT {columns}) AS r"
            sql_form = await scalar(connection, sql)
            assert sql_form == order.cursor_for(SimpleNamespace(**row)), (order.name, row)
            assert order.decode_cursor(sql_form) == [row[k.attr] for k in order.keys]
            compared += 1
    assert compared > 100


def test_order_by_sql_equals_order_by() -> None:
    """The text the compiler sorts a page by is the ORDER BY the repositories compile."""
    for order in ORDERS:
        table = order.keys[0].column.table.name  # type: ignore[union-attr]
        for reverse in (False, True):
            compiled = ", ".join(
                str(c.compile(dialect=PG)).replace(f"{table}.", "s.")
                for c in order.order_by(reverse)
            )
            assert order.order_by_sql("s", reverse) == compiled, (order.name, reverse)
