"""`graphql-api migrate upgrade` as a deploy step: two deploys at once cannot race, because the
migrations run under a PostgreSQL advisory lock (alembic/env.py)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest_asyncio

from db.migrations import MIGRATION_LOCK_KEY, head_revision
from db.urls import asyncpg_dsn
from tests.databases import create_database, drop_database, new_name

WAITING = """SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
WHERE l.locktype = 'advisory' AND NOT l.granted AND a.datname = current_database()"""


@pytest_asyncio.fixture
async def empty_database_url(pg_admin_url: str) -> AsyncIterator[str]:
    name = new_name("unmigrated")
    url = await create_database(pg_admin_url, name)
    yield url
    await drop_database(pg_admin_url, name)


async def migrate_upgrade(url: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "warning"}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "graphql_api",
        "migrate",
        "upgrade",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_concurrent_upgrades_wait_for_each_other(empty_database_url: str) -> None:
    holder = await asyncpg.connect(asyncpg_dsn(empty_database_url))
    try:
        # Another deploy is migrating: it holds the lock.
        await holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        first, second = [await migrate_upgrade(empty_database_url) for _ in range(2)]
        # Both wait for it (seen in pg_locks; bounded, and failing fast if one exits).
        deadline = time.monotonic() + 60
        while await holder.fetchval(WAITING) < 2:
            assert first.returncode is None and second.returncode is None, "one did not wait"
            assert time.monotonic() < deadline, "the upgrades never waited on the lock"
            await asyncio.sleep(0)  # let the event loop notice an exited process
        # Nothing has been migrated while the lock is held.
        assert await holder.fetchval("SELECT to_regclass('alembic_version')") is None

        await holder.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
        outcomes = await asyncio.gather(first.communicate(), second.communicate())
        assert (first.returncode, second.returncode) == (0, 0), outcomes
        # The second found the schema at head and did nothing more.
        revisions = await holder.fetch("SELECT version_num FROM alembic_version")
        assert [r["version_num"] for r in revisions] == [head_revision()]
        assert await holder.fetchval("SELECT to_regclass('tasks')") is not None
    finally:
        await holder.close()
