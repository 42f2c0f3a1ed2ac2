"""Database URL handling shared by the app, the CLI and Alembic."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


class DatabaseUrlError(ValueError):
    """DATABASE_URL is not a PostgreSQL URL this server can use."""


def normalise_database_url(raw: str) -> str:
    """Accept postgres://, postgresql:// and postgresql+asyncpg:// and return the asyncpg form."""
    try:
        url = make_url(raw.strip())
    except ArgumentError:
        raise DatabaseUrlError(
            "DATABASE_URL is not a valid URL; expected postgresql://user:password@host:port/dbname"
        ) from None
    backend = url.get_backend_name()
    if backend not in ("postgresql", "postgres"):
        raise DatabaseUrlError(f"DATABASE_URL must be a PostgreSQL URL, not {backend!r}")
    if url.drivername != "postgresql+asyncpg":
        url = url.set(drivername="postgresql+asyncpg")
    if not url.database:
        raise DatabaseUrlError("DATABASE_URL must name a database (…/dbname)")
    return url.render_as_string(hide_password=False)


def redacted(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def asyncpg_dsn(url: str) -> str:
    """The URL as asyncpg itself takes it (no SQLAlchemy driver name)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
