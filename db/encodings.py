"""Values as the API writes them, each in its two forms side by side: the Python function the
resolvers use, and the SQL expression the fast path compiles to. tests/test_encodings.py
evaluates every SQL form in PostgreSQL and checks that it equals the Python form.

Global ids live in db/ids.py and keyset cursors and orderings in db/repositories/keyset.py, each
beside its own Python twin, on the same terms.
"""

from __future__ import annotations

import enum
from datetime import datetime


def sql_literal(text: str) -> str:
    """A SQL string literal holding `text` (standard_conforming_strings, PostgreSQL's default
    since 9.1: only the quote is doubled)."""
    return "'" + text.replace("'", "''") + "'"


def iso_text(value: datetime) -> str:
    """A timestamp as the DateTime scalar serializes it: datetime.isoformat() (timestamptz
    columns arrive in UTC, so "+00:00", and ".ffffff" only when there are microseconds)."""
    return value.isoformat()


def iso_sql(expr: str) -> str:
    """iso_text of a timestamptz expression, in SQL (NULL stays NULL)."""
    utc = f"({expr} AT TIME ZONE 'UTC')"
    return (
        f"(to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN "
        f"extract(microseconds FROM {expr})::bigint % 1000000 <> 0 THEN to_char({utc}, '.US') "
        f"ELSE '' END || '+00:00')"
    )


def enum_text(value: enum.Enum) -> str:
    """An enum as GraphQL sends it: the member's name. The native PostgreSQL enums are declared
    with the names as labels (db/models/enums.py), so the SQL form is the column itself."""
    return value.name


def enum_sql(expr: str) -> str:
    """enum_text of an enum column, in SQL: its label."""
    return expr


def task_identifier(key: str, number: int) -> str:
    """A task's identifier, "<project key>-<number>", e.g. "WEB-42"."""
    return f"{key}-{number}"


def task_identifier_sql(key_expr: str, number_expr: str) -> str:
    """task_identifier in SQL, over a project key and a task number expression."""
    return f"({key_expr} || '-' || {number_expr})"
