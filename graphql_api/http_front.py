"""Everything /graphql does before the GraphQL executor: transport rules (JSON only, a body size
limit, CSRF-safe content types), the request deadline, and the fast path's cached plans.

A POSTed query whose compiled plan is cached (parsed, validated, costed and compiled before, for
the same variables and viewer) is answered here, rate limit included, without the executor.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import secrets
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson
from graphql import GraphQLError, OperationType, parse
from graphql.utilities import get_operation_ast
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from db.errors import is_refusal
from graphql_api.auth.tokens import authenticate
from graphql_api.context import REQUEST_DEADLINE
from graphql_api.database import Database
from graphql_api.deadlines import Deadline
from graphql_api.documents.requests import DocumentRequests, Refusal
from graphql_api.documents.store import DocumentStore
from graphql_api.failures import INTERNAL, TIMEOUT, classify
from graphql_api.fast.plans import PLAN_REFUSED, PLANS, plan_key
from graphql_api.limits.rate import RateLimiter
from graphql_api.observability.observer import Observer
from graphql_api.observability.request_log import REQUEST_LOG, RequestLog, note_outcome
from graphql_api.replicas import read_after
from graphql_api.settings import Settings

if TYPE_CHECKING:
    from graphql_api.limits.extension import Cost

log = logging.getLogger(__name__)

JSON_TYPES = ("application/json", "application/graphql-response+json")


# The request's id: the client's X-Request-ID when it is a sane one (a load balancer's or a
# tracing proxy's), else made here. It names the request in every error, log line and audit row.
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # audit_events.request_id holds 128


def request_id_for(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            given: str = value.decode("latin-1")
            if _CLIENT_REQUEST_ID.fullmatch(given):
                return given
    return f"{_ids.prefix}{next(_ids.counter):012x}"


class _Ids:
    """Ids made here: 32 hex digits, 80 random bits per process then a counter. Unique as
    uuid4's are, without asking the kernel for randomness on every request."""

    def __init__(self) -> None:
        self.renew()

    def renew(self) -> None:
        self.prefix = secrets.token_hex(10)
        self.counter = itertools.count()


_ids = _Ids()
# A forked worker (gunicorn --preload) must not repeat its parent's ids.
os.register_at_fork(after_in_child=_ids.renew)


def error_response(
    status: int, message: str, code: str, headers: dict[str, str] | None = None
) -> Response:
    note_outcome(code)
    extensions = {"code": code, "requestId": REQUEST_ID.get()}
    body = orjson.dumps({"errors": [{"message": message, "extensions": extensions}]})
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def failure_response(exc: BaseException) -> Response:
    """An exception outside GraphQL's own error handling, as the one error envelope."""
    failure = classify(exc) or INTERNAL
    request_id = REQUEST_ID.get()
    if failure is INTERNAL:
        log.error("unexpected error (request %s)", request_id, exc_info=exc)
    else:
        log.warning("%s (request %s): %r", failure.code, request_id, exc)
    return error_response(failure.status, failure.message, failure.code, failure.headers())


class BodyTooLarge(Exception):
    pass


async def read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


class GraphQLFront:
    def __init__(
        self,
        graphql: ASGIApp,
        settings: Settings,
        database: Database,
        limiter: Any,
        observer: Observer | None = None,
    ) -> None:
        self.graphql = graphql
        self.settings = settings
        self.database = database
        self._limiter = limiter
        self.observer = observer or Observer(metrics=False)
        # Documents sent by id (README, Persisted documents).
        self.documents = DocumentStore(database, settings)
        self.document_requests = DocumentRequests(self.documents, settings, _schema_of(graphql))

    @property
    def limiter(self) -> RateLimiter:
        limiter: RateLimiter = self._limiter()
        return limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.graphql(scope, receive, send)
            return
        request_id = request_id_for(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        REQUEST_ID.set(request_id)
        entry = RequestLog(request_id, scope["method"], scope["path"])
        REQUEST_LOG.set(entry)
        header = (b"x-request-id", request_id.encode())
        started = observed = False

        async def send_with_id(message: Message) -> None:
            nonlocal started, observed
            if message["type"] == "http.response.start":
                started = True
                entry.status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
            elif not message.get("more_body", False) and not observed:
                # Counted and logged before the client has the whole answer: a scrape or a log
                # reader that follows a response always sees it.
                observed = True
                self.observer.finished(entry)
            await send(message)

        try:
            async with Deadline(self.settings.request_timeout_s) as deadline:
                REQUEST_DEADLINE.set(deadline)  # lifted when a write commits: commit_begins
                await self.handle(scope, receive, send_with_id)
        except TimeoutError:
            log.error(
                "TIMEOUT (request %s): over the %.1f s deadline",
                request_id,
                self.settings.request_timeout_s,
            )
            if not started:
                await error_response(504, TIMEOUT.message, TIMEOUT.code)(
                    scope, receive, send_with_id
                )
        except Exception as exc:  # a bug: still the JSON envelope, with the request id
            if started:
                raise
            await failure_response(exc)(scope, receive, send_with_id)
        finally:
            if not observed:  # no complete response (the client left)
                observed = True
                self.observer.finished(entry)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "GET":
            resolved = await self._resolve_get(scope)
            if isinstance(resolved, Response):
                await resolved(scope, receive, send)
                return
            scope = resolved
        if scope["method"] == "GET" and _is_mutation(Request(scope)):
            # GET must be safe: a link or an <img> cannot be allowed to change anything.
            await error_response(
                405,
                "mutations are only accepted over POST",
                "METHOD_NOT_ALLOWED",
                {"Allow": "POST"},
            )(scope, receive, send)
            return
        if scope["method"] != "POST":
            await self.graphql(scope, receive, send)
            return
        # The few headers read here, from the raw list (first of each name, as Starlette's).
        headers = dict(reversed(scope["headers"]))
        media_type = headers.get(b"content-type", b"").decode("latin-1")
        media_type = media_type.split(";")[0].strip().lower()
        if media_type not in JSON_TYPES:
            # Forms and text/plain are what a cross-site page can send without a CORS preflight.
            await error_response(
                415, "POST a JSON body: Content-Type: application/json", "UNSUPPORTED_MEDIA_TYPE"
            )(scope, receive, send)
            return
        declared = headers.get(b"content-length", b"").decode("latin-1") or None
        if (
            declared is not None
            and declared.isdigit()
            and int(declared) > self.settings.max_body_bytes
        ):
            await self._too_large(scope, receive, send)
            return
        try:
            body = await read_body(receive, self.settings.max_body_bytes)
        except BodyTooLarge:
            await self._too_large(scope, receive, send)
            return
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            await error_response(
                400, "the body is not valid JSON (UTF-8, nested at most 1,024 deep)", "BAD_REQUEST"
            )(scope, receive, send)
            return
        if not isinstance(payload, dict | list):
            await error_response(
                400,
                'the body must be a JSON object: {"query": "...", "variables": {...}}',
                "BAD_REQUEST",
            )(scope, receive, send)
            return
        resolved = await self._resolve_post(payload)
        if isinstance(resolved, Response):
            await resolved(scope, receive, send)
            return
        by_id = resolved is not payload  # a document sent by id: filled in
        payload = resolved
        if self.settings.fast_path and isinstance(payload, dict):
            # A cached plan is one bounded statement: answered without watching the client.
            response = await self.answer_from_plan(scope, headers, payload)
            if response is not None:
                await response(scope, receive, send)
                return
        await self.execute(scope, receive, send, orjson.dumps(payload) if by_id else body)

    async def execute(self, scope: Scope, receive: Receive, send: Send, body: bytes) -> None:
        """The executor, cancelled if the client disconnects first: its statement stops, its
        transaction rolls back and its connection goes back to the pool now, not at the
        statement timeout. One watcher task listens to `receive` meanwhile."""
        task = asyncio.current_task()
        assert task is not None
        gone = asyncio.get_running_loop().create_future()
        watcher = asyncio.get_running_loop().create_task(_disconnected(receive, gone, task))
        try:
            await self.graphql(scope, _replay(body, gone), send)
        except asyncio.CancelledError:
            if not gone.done() or task.uncancel() > 0:
                raise  # the deadline's or the server's cancellation, not ours
            log.info("request %s cancelled: the client disconnected", REQUEST_ID.get())
            note_outcome("CANCELLED")
        finally:
            watcher.cancel()

    async def _resolve_post(self, payload: Any) -> Any:
        """The payload with the documents sent by id filled in (each of a batch), or the
        response refusing it."""
        try:
            if isinstance(payload, dict):
                return _refused(await self.document_requests.resolve(payload))
            items = [
                _refused(await self.document_requests.resolve(item))
                if isinstance(item, dict)
                else item
                for item in payload
            ]
        except Exception as exc:  # the database is unreachable
            return failure_response(exc)
        for item in items:
            if isinstance(item, Response):
                return item
        changed = any(new is not old for new, old in zip(items, payload, strict=True))
        return items if changed else payload

    async def _resolve_get(self, scope: Scope) -> Scope | Response:
        """A GET naming its document by id (Apollo's `useGETForHashedQueries` sends
        `?extensions={"persistedQuery":...}`): the same request with `query` filled in."""
        params = dict(Request(scope).query_params)
        if not ({"extensions", "documentId", "doc_id"} & params.keys()):
            return scope
        payload: dict[str, Any] = dict(params)
        if "extensions" in params:
            try:
                payload["extensions"] = orjson.loads(params["extensions"])
            except orjson.JSONDecodeError:
                return error_response(400, "extensions must be a JSON object", "BAD_REQUEST")
        try:
            resolved = _refused(await self.document_requests.resolve(payload))
        except Exception as exc:  # the database is unreachable
            return failure_response(exc)
        if isinstance(resolved, Response):
            return resolved
        if resolved.get("query") == params.get("query"):
            return scope
        params["query"] = resolved["query"]
        return {**scope, "query_string": urlencode(params).encode()}

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        await error_response(
            413,
            f"the request body is larger than {self.settings.max_body_bytes} bytes",
            "PAYLOAD_TOO_LARGE",
        )(scope, receive, send)

    async def answer_from_plan(
        self, scope: Scope, headers: dict[bytes, bytes], payload: dict[str, Any]
    ) -> ASGIApp | None:
        if b"graphql-response+json" in headers.get(b"accept", b""):
            return None  # let the executor negotiate that media type
        authorization = headers.get(b"authorization")
        viewer_id, bad_token = authenticate(
            authorization.decode("latin-1") if authorization is not None else None, self.settings
        )
        if viewer_id is None or bad_token:
            return None
        key = plan_key(
            payload.get("query"), payload.get("operationName"), payload.get("variables"), viewer_id
        )
        plan = PLANS.get(key) if key is not None else None
        if not plan:
            return None
        sql, values, cost = plan  # type: ignore[misc]
        entry = REQUEST_LOG.get()
        if entry is not None:
            entry.path, entry.operation_type = "fast", "query"
            entry.operation_name = payload.get("operationName") or None
            entry.viewer_id = str(viewer_id)
        answer = self._answer(sql, values, cost, viewer_id, scope)
        try:
            if self.observer.tracer is None:
                return await answer
            from graphql_api.observability.tracing import operation_span

            with operation_span(self.observer.tracer, "query", payload.get("operationName")):
                return await answer
        except Exception as exc:  # the database went away, a statement timed out, a bug
            if is_refusal(exc):
                PLAN_REFUSED.set(True)  # a role check failed: the resolvers answer, with the error
                return None
            return failure_response(exc)

    async def _answer(
        self, sql: str, values: Any, cost: Cost, viewer_id: Any, scope: Scope
    ) -> ASGIApp:
        key = f"user:{viewer_id}"
        limiter = self.limiter
        decision = limiter.charge_now(key, cost.points) or await limiter.charge(key, cost.points)
        if not decision.allowed:
            from graphql_api.limits.extension import rate_limited_error

            error = rate_limited_error(decision)
            note_outcome("RATE_LIMITED")
            body = orjson.dumps(
                {
                    "data": None,
                    "errors": [error.formatted],
                    "extensions": {"cost": cost.as_extension()},
                }
            )
            return Response(
                body, status_code=429, media_type="application/json", headers=decision.headers()
            )
        replicas = self.database.replicas
        text: str = (
            await self.database.read_scalar(sql, tuple(values))
            if replicas is None
            else await replicas.read_scalar(
                sql, tuple(values), viewer_id, read_after(Request(scope))
            )
        )
        return JsonAnswer(
            b'{"data":' + text.encode() + b',"extensions":' + cost.extension_json + b"}",
            decision.raw_headers(),
        )


class JsonAnswer:
    """A 200 with a JSON body, sent as two ASGI messages: what Starlette's Response does, without
    its header encoding on every request (the fast path's answers are all alike)."""

    __slots__ = ("body", "headers")

    def __init__(self, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        self.body, self.headers = body, headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(self.body)).encode()),
            *self.headers,
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


def _schema_of(graphql: ASGIApp) -> Any:
    """The graphql-core schema the app executes against (the default one for a bare app)."""
    schema = getattr(graphql, "schema", None)
    if schema is not None:
        return schema._schema
    from graphql_api.schema import schema as default

    return default._schema


def _refused(resolved: dict[str, Any] | Refusal) -> dict[str, Any] | Response:
    if not isinstance(resolved, Refusal):
        return resolved
    return error_response(resolved.status, resolved.message, resolved.code)


def _is_mutation(request: Request) -> bool:
    query = request.query_params.get("query")
    if not query:
        return False
    try:
        document = parse(query, max_tokens=10_000)
    except GraphQLError:
        return False  # the executor reports the syntax error
    operation = get_operation_ast(document, request.query_params.get("operationName"))
    return operation is not None and operation.operation == OperationType.MUTATION


def _replay(body: bytes, gone: asyncio.Future[None]) -> Receive:
    """`receive` for an app that reads the body we already read; after it, the disconnect when
    it comes (one task only listens to the real `receive`: _disconnected)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.shield(gone)
        return {"type": "http.disconnect"}

    return replay


async def _disconnected(
    receive: Receive, gone: asyncio.Future[None], task: asyncio.Task[Any]
) -> None:
    """Cancels `task` when the client disconnects (the body has been read: nothing else can
    come but the disconnect)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    gone.set_result(None)
    task.cancel()
