"""Scalars whose parsing this API decides: DateTime (an instant PostgreSQL and Python can both
hold; an ISO 8601 string without an offset is taken as UTC)."""

from __future__ import annotations

from datetime import UTC, datetime

from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.types.scalar import ScalarDefinition

from db.encodings import iso_text
from db.values import storable_datetime

MAX_DATETIME_CHARS = 64


def parse_datetime(value: object) -> datetime:
    # The messages never echo the value: it may be huge or hold control characters.
    if not isinstance(value, str) or len(value) > MAX_DATETIME_CHARS:
        raise StrawberryInputCoercionError(
            "DateTime must be an ISO 8601 string, e.g. 2026-01-31T09:00:00Z"
        )
    try:
        parsed = datetime.fromisoformat(value)
    except (ValueError, OverflowError):
        raise StrawberryInputCoercionError(
            "not an ISO 8601 date and time, e.g. 2026-01-31T09:00:00Z"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return storable_datetime(parsed)
    except ValueError as exc:
        raise StrawberryInputCoercionError(f"DateTime: {exc}") from None


DATETIME = ScalarDefinition(
    name="DateTime",
    description="Date with time (isoformat)",
    specified_by_url=None,
    serialize=iso_text,
    parse_value=parse_datetime,
    parse_literal=None,
    origin=datetime,
)

SCALAR_OVERRIDES = {datetime: DATETIME}
