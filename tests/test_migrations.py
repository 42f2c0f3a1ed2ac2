"""The migrations build exactly the schema the models describe, and undo it completely."""

from __future__ import annotations

from typing import Any

import asyncpg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from db.base import Base
from db.migrations import downgrade, head_revision, upgrade
from tests.databases import create_database, drop_database, dsn, new_name


async def _schema_diff(url: str) -> list[Any]:
    engine = create_async_engine(url, poolclass=pool.NullPool)

    def diff(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return compare_metadata(context, Base.metadata)

    try:
        async with engine.connect() as conn:
            return await conn.run_sync(diff)
    finally:
        await engine.dispose()


async def _objects(url: str) -> dict[str, set[str]]:
    conn = await asyncpg.connect(dsn(url))
    try:
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        types = await conn.fetch(
            "SELECT typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
            "WHERE n.nspname = 'public' AND t.typtype = 'e'"
        )
        return {"tables": {r[0] for r in tables}, "enums": {r[0] for r in types}}
    finally:
        await conn.close()


async def test_round_trip_and_models_match_migrations(pg_admin_url: str) -> None:
    name = new_name("roundtrip")
    url = await create_database(pg_admin_url, name)
    try:
        await upgrade(url)
        created = await _objects(url)
        assert set(Base.metadata.tables) <= created["tables"]
        assert created["enums"] == {"role", "task_status", "task_priority"}

        await downgrade(url, "base")
        assert await _objects(url) == {"tables": {"alembic_version"}, "enums": set()}

        await upgrade(url)
        assert await _objects(url) == created
        assert await _schema_diff(url) == []
    finally:
        await drop_database(pg_admin_url, name)


def test_one_head() -> None:
    assert head_revision() is not None
