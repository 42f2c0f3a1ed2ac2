"""Database URL handling shared by the app, the CLI and Alembic."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


class DatabaseUrlError(ValueError):
    """DATABASE_URL is not a PostgreSQL URL this server can use."""


def normalise_database_url(raw: str, name: str = "DATABASE_URL") -> str:
    """Accept postgres://, postgresql:// and postgresql+asyncpg:// and return the asyncpg form."""
    try:
        url = make_url(raw.strip())
    except ArgumentError:
        raise DatabaseUrlError(
            f"{name} is not a valid URL; expected postgresql://user:password@host:port/dbname"
        ) from None
    backend = url.get_backend_name()
    if backend not in ("postgresql", "postgres"):
        raise DatabaseUrlError(f"{name} must be a PostgreSQL URL, not {backend!r}")
    if url.drivername != "postgresql+asyncpg":
        url = url.set(drivername="postgresql+asyncpg")
    if not url.database:
        raise DatabaseUrlError(f"{name} must name a database (…/dbname)")
    return url.render_as_string(hide_password=False)


def without_pgbouncer_flag(raw: str) -> tuple[str, bool]:
    """`…?pgbouncer=true` (as Prisma spells it) says the URL is PgBouncer's; the parameter is
    ours, not PostgreSQL's, so it is removed before anything connects."""
    try:
        url = make_url(raw.strip())
    except ArgumentError:
        return raw, False  # normalise_database_url explains what is wrong with it
    if "pgbouncer" not in url.query:
        return raw, False
    value = url.query["pgbouncer"]
    flag = (value[-1] if isinstance(value, tuple) else value).strip().lower()
    if flag not in ("true", "on", "1", "yes", "false", "off", "0", "no"):
        raise DatabaseUrlError(
            f"DATABASE_URL's pgbouncer parameter must be true or false, not {flag!r}"
        )
    stripped = url.difference_update_query(["pgbouncer"]).render_as_string(hide_password=False)
    return stripped, flag in ("true", "on", "1", "yes")


def redacted(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def asyncpg_dsn(url: str) -> str:
    """The URL as asyncpg itself takes it (no SQLAlchemy driver name)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
