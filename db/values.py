"""What PostgreSQL can store, checked before a value reaches a statement: text without NUL
characters or unpaired surrogates (PostgreSQL's text cannot hold either, and UTF-8 cannot encode
the second), timestamps in the range both Python and PostgreSQL represent, and integers that fit
an `integer` column. Every path that takes a value from a client (GraphQL arguments, variables,
cursors) uses these, so bad input is a client error, never a driver exception."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

INT4_MIN, INT4_MAX = -(2**31), 2**31 - 1

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable_text(value: str) -> bool:
    """NUL, or a surrogate code point (JSON and GraphQL decoding turn a valid pair into one
    character, so any surrogate left is an unpaired one)."""
    return _UNSTORABLE.search(value) is not None


def find_unstorable_text(value: Any, depth: int = 0) -> bool:
    """Whether any string in a decoded JSON value (dicts, lists, scalars) is unstorable."""
    if isinstance(value, str):
        return unstorable_text(value)
    if depth > 64:
        return False  # the JSON decoder's own depth limit comes first
    if isinstance(value, dict):
        return any(
            find_unstorable_text(k, depth + 1) or find_unstorable_text(v, depth + 1)
            for k, v in value.items()
        )
    if isinstance(value, list):
        return any(find_unstorable_text(v, depth + 1) for v in value)
    return False


# Python's range, inside PostgreSQL's, less a day at each end: asyncpg writes datetime.min and
# datetime.max as -infinity and infinity, and an offset can push a time past either.
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)
RANGE = "0001-01-02 to 9999-12-30 (UTC)"


def storable_datetime(value: datetime) -> datetime:
    """The instant in UTC; ValueError for a naive time or one outside EARLIEST..LATEST."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("a time zone offset is required, e.g. 2026-01-31T09:00:00Z")
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"the date is out of range: {RANGE}") from None
    if not EARLIEST <= utc <= LATEST:
        raise ValueError(f"the date is out of range: {RANGE}")
    return utc


def storable_int4(value: int) -> int:
    if not INT4_MIN <= value <= INT4_MAX:
        raise ValueError("the number is out of range")
    return value
