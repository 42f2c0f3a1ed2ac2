"""Every SQL builder of db/json_sql.py, run in PostgreSQL: the JSON each one makes, nested as the
compiler nests them (graphql_api/fast/compiler.py), with parameters numbered as it numbers them."""

from __future__ import annotations

import re
import uuid
from typing import Any

import orjson
import pytest
from sqlalchemy import Integer, String, Uuid, column, select, values
from sqlalchemy.ext.asyncio import AsyncConnection

from db.encodings import sql_literal
from db.errors import is_refusal
from db.json_sql import (
    EMPTY_JSON_LIST,
    JSON_NULL,
    MAX_KEYS,
    Params,
    TooManyKeys,
    column_of,
    column_sql,
    derived,
    guarded,
    json_list,
    json_object,
    json_select,
    json_single,
    may_refuse,
    ordered_unnest,
    row_alias,
    scalar_subquery,
    text_root,
    unnested_id,
)
from db.models.enums import Role
from tests.test_encodings import TEXTS

IDS = [uuid.UUID(int=i) for i in range(1, 4)]


def rows(*data: tuple[int, str, uuid.UUID]) -> Any:
    """A row source with bound parameters (n, name, id), as repository statements have."""
    columns = (column("n", Integer), column("name", String), column("id", Uuid))
    return values(*columns, name="v").data(list(data))


ROWS = rows((1, "one", IDS[0]), (2, "two", IDS[1]), (3, "three", IDS[2]))


async def json_of(connection: AsyncConnection, value_sql: str, params: Params | None) -> Any:
    """The JSON the statement text_root(value_sql) sends, parsed."""
    values_ = tuple(params.values) if params is not None else ()
    text = (await connection.exec_driver_sql(text_root(value_sql), values_)).scalar_one()
    assert isinstance(text, str)
    return orjson.loads(text)


async def test_text_root_sends_the_json_as_text(connection: AsyncConnection) -> None:
    assert await json_of(connection, json_object([("a", "1")]), None) == {"a": 1}
    assert await json_of(connection, EMPTY_JSON_LIST, None) == []
    # JSON_NULL is SQL's NULL where a JSON value goes: inside an object or list it is null.
    assert await json_of(connection, json_object([("a", JSON_NULL)]), None) == {"a": None}


async def test_json_object_keeps_keys_and_their_order(connection: AsyncConnection) -> None:
    pairs = [(key, str(i)) for i, key in enumerate(TEXTS)]
    pairs.append(("nested", json_object([("z", JSON_NULL), ("a", sql_literal("it's"))])))
    data = await json_of(connection, json_object(pairs), None)
    assert list(data.items()) == [
        *((key, i) for i, key in enumerate(TEXTS)),
        ("nested", {"z": None, "a": "it's"}),
    ]
    assert await json_of(connection, json_object([]), None) == {}


async def test_json_object_takes_at_most_max_keys(connection: AsyncConnection) -> None:
    widest = [(f"k{i}", str(i)) for i in range(MAX_KEYS)]
    assert await json_of(connection, json_object(widest), None) == {k: int(v) for k, v in widest}
    with pytest.raises(TooManyKeys):
        json_object([*widest, ("one_more", "0")])


async def test_params_number_placeholders_and_embedded_statements(
    connection: AsyncConnection,
) -> None:
    """A statement embedded after other parameters has its own renumbered after them; enums
    are bound by value."""
    params = Params()
    first = params.add("first")
    role = params.add(Role.ADMIN)
    stmt = select(ROWS.c.name).where(ROWS.c.n >= 2).order_by(ROWS.c.n)
    inner = params.embed(stmt)
    assert (first, role) == ("$1", "$2")
    assert params.values[:2] == ["first", "ADMIN"]
    assert {int(n) for n in re.findall(r"\$(\d+)", inner)} == set(range(3, len(params.values) + 1))
    obj = json_object(
        [
            ("first", f"{first}::text"),
            ("role", f"{role}::role"),
            ("names", json_list(column_sql("x1", "name"), inner, "x1")),
        ]
    )
    assert await json_of(connection, obj, params) == {
        "first": "first",
        "role": "ADMIN",
        "names": ["two", "three"],
    }


async def test_json_list_is_the_rows_in_order_or_empty(connection: AsyncConnection) -> None:
    params = Params()
    a = row_alias(1)
    item = json_object([("n", column_sql(a, "n")), ("name", column_sql(a, "name"))])
    descending = params.embed(select(ROWS).order_by(ROWS.c.n.desc()))
    none = params.embed(select(ROWS).where(ROWS.c.n > 3))
    obj = json_object([("all", json_list(item, descending, a)), ("none", json_list(item, none, a))])
    assert await json_of(connection, obj, params) == {
        "all": [{"n": 3, "name": "three"}, {"n": 2, "name": "two"}, {"n": 1, "name": "one"}],
        "none": [],
    }


async def test_json_single_is_the_row_or_null(connection: AsyncConnection) -> None:
    params = Params()
    a = row_alias(1)
    item = json_object([("name", column_sql(a, "name"))])
    found = params.embed(select(ROWS).where(ROWS.c.n == 2))
    missing = params.embed(select(ROWS).where(ROWS.c.n == 4))
    obj = json_object(
        [("found", json_single(item, found, a)), ("missing", json_single(item, missing, a))]
    )
    assert await json_of(connection, obj, params) == {"found": {"name": "two"}, "missing": None}


async def test_column_of_correlates_a_nested_statement(connection: AsyncConnection) -> None:
    """As a reference is compiled: each outer row's inner lookup compares with its column."""
    params = Params()
    outer, inner = row_alias(1), row_alias(2)
    assert outer != inner
    other = rows((1, "uno", IDS[0]), (3, "tres", IDS[2]))
    lookup = params.embed(select(other).where(other.c.n == column_of(outer, "n")))
    item = json_object(
        [
            ("name", column_sql(outer, "name")),
            (
                "other",
                json_single(json_object([("name", column_sql(inner, "name"))]), lookup, inner),
            ),
        ]
    )
    listed = json_list(item, params.embed(select(ROWS).order_by(ROWS.c.n)), outer)
    assert await json_of(connection, listed, params) == [
        {"name": "one", "other": {"name": "uno"}},
        {"name": "two", "other": None},
        {"name": "three", "other": {"name": "tres"}},
    ]


async def test_json_select_scalar_subquery_and_derived(connection: AsyncConnection) -> None:
    params = Params()
    counted = params.embed(select(ROWS.c.n).where(ROWS.c.n > 1))
    count = json_select("count(*)", derived(counted, "c"))
    maximum = scalar_subquery(params.embed(select(ROWS.c.n).order_by(ROWS.c.n.desc()).limit(1)))
    nothing = scalar_subquery(params.embed(select(ROWS.c.n).where(ROWS.c.n > 3)))
    obj = json_object(
        [
            ("count", count),
            ("max", maximum),
            ("nothing", nothing),
            ("once", json_select(json_object([("a", "1")]))),
        ]
    )
    assert await json_of(connection, obj, params) == {
        "count": 2,
        "max": 3,
        "nothing": None,
        "once": {"a": 1},
    }


async def test_guarded_answers_or_refuses(connection: AsyncConnection) -> None:
    answer = json_object([("secret", sql_literal("kept"))])
    allowed = guarded("SELECT true", answer, "READ not allowed")
    assert may_refuse(allowed) and not may_refuse(answer)
    assert await json_of(connection, json_object([("x", allowed)]), None) == {
        "x": {"secret": "kept"}
    }
    refused = guarded("SELECT false", answer, "READ not allowed")
    savepoint = await connection.begin_nested()
    with pytest.raises(Exception) as raised:
        await json_of(connection, json_object([("x", refused)]), None)
    await savepoint.rollback()
    assert is_refusal(raised.value)
    assert "READ not allowed" in str(raised.value)


async def test_ordered_unnest_answers_each_id_in_order(connection: AsyncConnection) -> None:
    """As nodes(ids:) is compiled: an item per (kind, id), in order, null for an unknown kind
    or a missing row, each kind's lookup written once."""
    params = Params()
    i = row_alias(1)
    found = row_alias(2)

    def lookup(kind: str) -> str:
        stmt = select(ROWS).where(ROWS.c.id == unnested_id(i))
        item = json_object([("kind", sql_literal(kind)), ("name", column_sql(found, "name"))])
        return json_single(item, params.embed(stmt), found)

    answers = [("Label", lookup("Label")), ("Task", lookup("Task"))]
    pairs = [("Task", IDS[2]), ("", None), ("Label", IDS[0]), ("Task", uuid.UUID(int=9))]
    pairs += [("Project", IDS[1]), ("Task", IDS[2])]
    kinds = params.add([k for k, _ in pairs])
    ids = params.add([id for _, id in pairs])
    sql = ordered_unnest(i, kinds, ids, answers)
    assert sql.count("WHEN 'Task'") == 1
    assert await json_of(connection, sql, params) == [
        {"kind": "Task", "name": "three"},
        None,
        {"kind": "Label", "name": "one"},
        None,
        None,
        {"kind": "Task", "name": "three"},
    ]


async def test_ordered_unnest_without_answers_or_ids(connection: AsyncConnection) -> None:
    params = Params()
    none_known = ordered_unnest("x1", params.add(["Nope", ""]), params.add([IDS[0], None]), [])
    empty = ordered_unnest("x2", params.add([]), params.add([]), [])
    obj = json_object([("none_known", none_known), ("empty", empty)])
    assert await json_of(connection, obj, params) == {"none_known": [None, None], "empty": []}
