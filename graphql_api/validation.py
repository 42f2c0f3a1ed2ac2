"""Input rules shared by resolvers; each violation is INVALID_INPUT with the field's path."""

from __future__ import annotations

import re
import unicodedata

from db.errors import InvalidInput
from graphql_api.auth.passwords import MAX_LENGTH, MIN_LENGTH

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$")


MAX_EMAIL = 320


def email(value: str, field: list[str]) -> str:
    normalised = unicodedata.normalize("NFKC", value).strip().lower()
    if len(normalised) > MAX_EMAIL or not _EMAIL.match(normalised):
        raise InvalidInput("enter a valid email address", field=field)
    return normalised


def password(value: str, field: list[str]) -> str:
    if not MIN_LENGTH <= len(value) <= MAX_LENGTH:
        raise InvalidInput(
            f"the password must be {MIN_LENGTH} to {MAX_LENGTH} characters long", field=field
        )
    return value


def text(value: str, field: list[str], *, max_length: int, what: str) -> str:
    """Trimmed, 1..max_length characters."""
    cleaned = value.strip()
    if not 1 <= len(cleaned) <= max_length:
        raise InvalidInput(f"{what} must be 1 to {max_length} characters long", field=field)
    return cleaned


def slug(value: str, field: list[str]) -> str:
    if not _SLUG.match(value):
        raise InvalidInput(
            "a slug is 1 to 48 lower-case letters, digits and inner hyphens", field=field
        )
    return value


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    base = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:40].strip("-")
    return base or "workspace"
