"""The HTTP front of the fast path: a POSTed query whose compiled plan is cached is answered
without entering the GraphQL executor at all.

A plan exists only for a document that was parsed, validated and compiled before, for the same
variables and the same viewer, so answering from it is what the full path would do. Everything
else (and every first sight of a query) goes to strawberry unchanged.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graphql_api.auth.tokens import authenticate
from graphql_api.database import Database
from graphql_api.fast.plans import PLANS, plan_key
from graphql_api.settings import Settings


class FastPathFront:
    def __init__(self, graphql: ASGIApp, settings: Settings, database: Database) -> None:
        self.graphql = graphql
        self.settings = settings
        self.database = database

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not self.settings.fast_path:
            await self.graphql(scope, receive, send)
            return
        request = Request(scope, receive)
        content_type = request.headers.get("content-type", "")
        accept = request.headers.get("accept", "")
        if not content_type.startswith("application/json") or "graphql-response+json" in accept:
            await self.graphql(scope, receive, send)
            return
        body = await request.body()
        response = await self.answer(request, body)
        if response is not None:
            await response(scope, receive, send)
        else:
            await self.graphql(scope, _replay(body, receive), send)

    async def answer(self, request: Request, body: bytes) -> Response | None:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(payload, dict):
            return None
        viewer_id, bad_token = authenticate(request.headers.get("authorization"), self.settings)
        if viewer_id is None or bad_token:
            return None
        key = plan_key(
            payload.get("query"), payload.get("operationName"), payload.get("variables"), viewer_id
        )
        plan = PLANS.get(key) if key is not None else None
        if not plan:
            return None
        sql, values = plan  # type: ignore[misc]
        text: str = await self.database.read_scalar(sql, tuple(values))
        return Response(b'{"data":' + text.encode() + b"}", media_type="application/json")


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` for an app that reads the body we already read."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        message: dict[str, Any] = dict(await receive())
        return message

    return replay
