"""The limit endpoint: the least a Python server can do for the same answers. Starlette and
asyncpg, one hand-written SQL statement per operation, PostgreSQL's JSON passed through.

Run by the harness as `uvicorn bench.limit:app`; LIMIT_DATABASE_URL and LIMIT_ACTOR name the
database and the user that M1 writes as.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.operations import LIMIT_M1, LIMIT_Q1, LIMIT_Q1C, LIMIT_Q2, LIMIT_Q3
from db.ids import uuid7
from db.urls import asyncpg_dsn
from graphql_api.pools import keep_session

POOL: dict[str, Any] = {}


def _uuid(global_id: str) -> uuid.UUID:
    raw = base64.urlsafe_b64decode(global_id + "=" * (-len(global_id) % 4)).decode()
    return uuid.UUID(raw.partition(":")[2])


async def graphql(request: Request) -> Response:
    body = orjson.loads(await request.body())
    name, variables = body.get("operationName"), body.get("variables") or {}
    pool: asyncpg.Pool = POOL["pool"]
    async with pool.acquire() as conn:
        if name == "Board":
            result = await conn.fetchval(LIMIT_Q1, _uuid(variables["id"]))
        elif name == "BoardCounts":
            result = await conn.fetchval(LIMIT_Q1C, _uuid(variables["id"]))
        elif name == "Task":
            result = await conn.fetchval(LIMIT_Q2, _uuid(variables["id"]), variables["id"])
        elif name == "Deep":
            result = await conn.fetchval(LIMIT_Q3, variables["slug"])
        elif name == "Create":
            given = variables["input"]
            task_id = uuid7()
            result = await conn.fetchval(
                LIMIT_M1,
                _uuid(given["projectId"]),
                task_id,
                given["title"],
                uuid.UUID(os.environ["LIMIT_ACTOR"]),
                [_uuid(label) for label in given.get("labelIds", [])],
                uuid7(),
                base64.urlsafe_b64encode(f"Task:{task_id}".encode()).decode(),
            )
        else:
            return Response(b'{"errors":[{"message":"unknown operation"}]}', status_code=400)
    return Response(result.encode(), media_type="application/json")


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    POOL["pool"] = await asyncpg.create_pool(
        asyncpg_dsn(os.environ["LIMIT_DATABASE_URL"]),
        min_size=2,
        max_size=10,
        reset=keep_session,  # as the server's read pool: no reset statement per request
        # Its statements are fixed: planned once (the default re-plans Q1 per execution).
        server_settings={"plan_cache_mode": "force_generic_plan"},
    )
    yield
    await POOL["pool"].close()


app = Starlette(routes=[Route("/graphql", graphql, methods=["POST"])], lifespan=lifespan)
