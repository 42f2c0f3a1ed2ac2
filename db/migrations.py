"""Alembic, driven from code: used by the CLI, the embedded default, /readyz and the tests."""

from __future__ import annotations

import asyncio
from functools import lru_cache
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncConnection

from alembic import command

ROOT = Path(__file__).resolve().parent.parent
# pg_advisory_lock key held while migrations run (alembic/env.py): "gqlapimg" in ASCII.
MIGRATION_LOCK_KEY = 0x6771_6C61_7069_6D67


def alembic_config(database_url: str | None = None) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    if database_url is not None:
        config.attributes["database_url"] = database_url
    # Run from code, the caller owns logging (LOG_LEVEL); alembic.ini's is for the alembic CLI.
    config.attributes["configure_logging"] = False
    return config


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _run(database_url: str, fn: str, *args: str) -> None:
    getattr(command, fn)(alembic_config(database_url), *args)


async def upgrade(database_url: str, revision: str = "head") -> None:
    """Run in a thread: Alembic's async env.py starts its own event loop."""
    await asyncio.to_thread(_run, database_url, "upgrade", revision)


async def downgrade(database_url: str, revision: str) -> None:
    await asyncio.to_thread(_run, database_url, "downgrade", revision)


def run_sync(database_url: str, fn: str, *args: str) -> None:
    _run(database_url, fn, *args)


async def current_revision(conn: AsyncConnection) -> str | None:
    try:
        async with conn.begin_nested():
            result = await conn.execute(text("SELECT version_num FROM alembic_version"))
            return result.scalar_one_or_none()
    except ProgrammingError:  # no alembic_version table: never migrated
        return None
