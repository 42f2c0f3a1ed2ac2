"""Async Alembic environment. The URL comes from the caller (`config.attributes["database_url"]`)
or from the same Settings the server reads (DATABASE_URL)."""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import db.models  # noqa: F401  (registers every table on the metadata)
from alembic import context
from db.base import Base
from db.migrations import MIGRATION_LOCK_KEY as LOCK_KEY

config = context.config
target_metadata = Base.metadata

if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    url = config.attributes.get("database_url")
    if url:
        return str(url)
    from graphql_api.settings import Settings

    settings = Settings.from_env()
    url = settings.database_direct_url or settings.database_url  # a session: not via PgBouncer
    if url is None:
        raise SystemExit(
            "DATABASE_URL is not set; use `graphql-api migrate` for the embedded default"
        )
    return url


def do_run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = create_async_engine(database_url(), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            # Two deploys migrating at once: the second waits here for the first, then finds
            # the schema at its revision and does nothing. A session lock, held across the
            # migrations' own transactions, and released with the connection if we die.
            await connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": LOCK_KEY})
            await connection.commit()
            try:
                await connection.run_sync(do_run_migrations)
            finally:
                await connection.rollback()
                await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
                await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_offline() -> None:
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
    else:
        asyncio.run(run_async_migrations())
