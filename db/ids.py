"""Ids: time-ordered UUIDs (RFC 9562 version 7), generated in Python for index locality, and the
opaque global ids the API shows ("<Type>:<uuid>" in base64url), in Python and in SQL."""

from __future__ import annotations

import base64
import binascii
import os
import time
import uuid

from db.encodings import sql_literal

_last_ms = 0
_counter = 0


def uuid7() -> uuid.UUID:
    """48 bits of Unix milliseconds, then a 12-bit counter so ids made in one millisecond
    still sort in creation order, then 62 random bits."""
    global _last_ms, _counter
    ms = time.time_ns() // 1_000_000
    if ms <= _last_ms:
        ms = _last_ms
        _counter += 1
        if _counter > 0xFFF:  # counter exhausted: borrow the next millisecond
            ms += 1
            _counter = 0
    else:
        _counter = 0
    _last_ms = ms
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms << 80) | (0x7 << 76) | (_counter << 64) | (0b10 << 62) | rand
    return uuid.UUID(int=value)


def global_id(type_name: str, id: uuid.UUID) -> str:
    """The opaque id of one object: base64url of "<Type>:<uuid>", padded."""
    return base64.urlsafe_b64encode(f"{type_name}:{id}".encode()).decode()


def parse_global_id(global_id: str) -> tuple[str, uuid.UUID] | None:
    """(type name, uuid), or None for anything that is not one of our ids."""
    try:
        raw = base64.urlsafe_b64decode(global_id.encode() + b"=" * (-len(global_id) % 4))
        type_name, _, value = raw.decode().partition(":")
        return type_name, uuid.UUID(value)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        return None


# PostgreSQL's base64 adds a line break after each 76 characters written from whole 3-byte groups
# (57 bytes), even at the end: with 36 bytes for the uuid and one for the colon, type names of up
# to 19 bytes (56 in all, the last group padded) need no line breaks removed.
MAX_TYPE_NAME = 19


def global_id_sql(type_name: str, expr: str) -> str:
    """global_id in SQL, over a uuid expression."""
    if len(type_name.encode()) > MAX_TYPE_NAME:
        raise ValueError(f"type name {type_name!r} too long for global_id_sql")
    return _base64url(f"{sql_literal(type_name + ':')} || {expr}::text")


def global_id_of_sql(type_expr: str, expr: str) -> str:
    """global_id in SQL when the type name is itself a column (AuditEvent.entityId): any
    length, so the line breaks of PostgreSQL's base64 are taken out."""
    encoded = _base64url(f"{type_expr} || ':' || {expr}::text")
    return f"replace({encoded}, E'\\n', '')"


def _base64url(text: str) -> str:
    return f"translate(encode(convert_to({text}, 'UTF8'), 'base64'), '+/', '-_')"
