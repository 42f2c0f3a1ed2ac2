"""The limit endpoint: the least a Python server can do for the same answers. Starlette and
asyncpg, one hand-written SQL statement per operation, PostgreSQL's JSON passed through.

Run by the harness as `uvicorn bench.limit:app`; LIMIT_DATABASE_URL and LIMIT_ACTOR name the
database and the user that M1 writes as, and Q4-Q7 read as (the signed-in viewer).
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.operations import (
    LIMIT_M1,
    LIMIT_Q1,
    LIMIT_Q1C,
    LIMIT_Q2,
    LIMIT_Q3,
    LIMIT_Q4,
    LIMIT_Q5,
    LIMIT_Q6,
    LIMIT_Q7,
)
from db.ids import uuid7
from db.urls import asyncpg_dsn

POOL: dict[str, Any] = {}


def _parse(global_id: str) -> tuple[str, uuid.UUID]:
    raw = base64.urlsafe_b64decode(global_id + "=" * (-len(global_id) % 4)).decode()
    kind, _, value = raw.partition(":")
    return kind, uuid.UUID(value)


def _uuid(global_id: str) -> uuid.UUID:
    return _parse(global_id)[1]


@cache
def _viewer() -> uuid.UUID:
    return uuid.UUID(os.environ["LIMIT_ACTOR"])


async def graphql(request: Request) -> Response:
    body = orjson.loads(await request.body())
    name, variables = body.get("operationName"), body.get("variables") or {}
    pool: asyncpg.Pool = POOL["pool"]
    async with pool.acquire() as conn:
        result = await answer(conn, name, variables)
    if result is None:
        return Response(b'{"errors":[{"message":"unknown operation"}]}', status_code=400)
    return Response(result.encode(), media_type="application/json")


async def answer(conn: Any, name: str | None, variables: dict[str, Any]) -> str | None:
    """The response to one operation, by its name, with one statement; None if unknown."""
    if name == "Board":
        result = await conn.fetchval(LIMIT_Q1, _uuid(variables["id"]))
    elif name == "BoardCounts":
        result = await conn.fetchval(LIMIT_Q1C, _uuid(variables["id"]))
    elif name == "Task":
        result = await conn.fetchval(LIMIT_Q2, _uuid(variables["id"]), variables["id"])
    elif name == "Deep":
        result = await conn.fetchval(LIMIT_Q3, variables["slug"])
    elif name == "History":
        result = await conn.fetchval(LIMIT_Q4, _uuid(variables["id"]), _viewer())
    elif name == "AuditLog":
        result = await conn.fetchval(LIMIT_Q5, variables["slug"], _viewer())
    elif name == "Nodes":
        parsed = [_parse(i) for i in variables["ids"]]
        result = await conn.fetchval(
            LIMIT_Q6,
            [kind for kind, _ in parsed],
            [id for _, id in parsed],
            variables["ids"],
            _viewer(),
        )
    elif name == "BoardInclude":
        statement = LIMIT_Q7[(variables["withLabels"], variables["compact"])]
        result = await conn.fetchval(statement, _uuid(variables["id"]))
    elif name == "Create":
        given = variables["input"]
        task_id = uuid7()
        result = await conn.fetchval(
            LIMIT_M1,
            _uuid(given["projectId"]),
            task_id,
            given["title"],
            _viewer(),
            [_uuid(label) for label in given.get("labelIds", [])],
            uuid7(),
            base64.urlsafe_b64encode(f"Task:{task_id}".encode()).decode(),
        )
    else:
        return None
    return result  # type: ignore[no-any-return]


async def keep_session(conn: asyncpg.Connection) -> None:
    """A released connection needs nothing before its next use when all it ever ran is single
    SELECTs: asyncpg's default reset (RESET ALL, UNLISTEN, CLOSE ALL and an advisory unlock)
    would be one more round trip per request."""


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    POOL["pool"] = await asyncpg.create_pool(
        asyncpg_dsn(os.environ["LIMIT_DATABASE_URL"]),
        min_size=2,
        max_size=10,
        reset=keep_session,
        # Its statements are fixed: planned once (the default re-plans Q1 per execution).
        server_settings={"plan_cache_mode": "force_generic_plan"},
    )
    yield
    await POOL["pool"].close()


app = Starlette(routes=[Route("/graphql", graphql, methods=["POST"])], lifespan=lifespan)
