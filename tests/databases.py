"""Create and drop the test run's own databases; never touch any other."""

from __future__ import annotations

import uuid

import asyncpg
from sqlalchemy.engine import make_url

from db.urls import asyncpg_dsn

RUN_ID = uuid.uuid4().hex[:8]
PREFIX = f"gqlapi_test_{RUN_ID}"


dsn = asyncpg_dsn


def with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def create_database(admin_url: str, name: str, template: str | None = None) -> str:
    assert name.startswith(PREFIX), "tests only create databases of their own"
    conn = await asyncpg.connect(dsn(admin_url))
    try:
        suffix = f' TEMPLATE "{template}"' if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{suffix}')
    finally:
        await conn.close()
    return with_database(admin_url, name)


async def drop_database(admin_url: str, name: str) -> None:
    assert name.startswith(PREFIX), "tests only drop databases they created"
    conn = await asyncpg.connect(dsn(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def new_name(label: str) -> str:
    return f"{PREFIX}_{label}_{uuid.uuid4().hex[:6]}"
