"""create_app(settings) -> the Starlette application."""

from __future__ import annotations

import gc
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import orjson
from cross_web import HTTPException
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from graphql_api.auth.tokens import authenticate
from graphql_api.context import Context
from graphql_api.database import Database
from graphql_api.documents.parsed import is_subscription
from graphql_api.events.frames import RecordRawSend, TextBatchWriter, batch_writer
from graphql_api.events.hub import EventHub
from graphql_api.events.ws import ConnectionRegistry, TransportWSHandler, admit
from graphql_api.failures import UNAVAILABLE
from graphql_api.graphiql import ASSETS_PATH, graphiql_assets, graphiql_page
from graphql_api.http_front import GraphQLFront, error_response, failure_response
from graphql_api.limits.rate import RateLimiter
from graphql_api.observability.observer import Observer
from graphql_api.observability.request_log import note_outcome
from graphql_api.observability.sql import count_engine_statements, counted
from graphql_api.replicas import read_after
from graphql_api.retries import retrying
from graphql_api.schema import build_schema
from graphql_api.schema.errors import shape_errors
from graphql_api.settings import Settings

log = logging.getLogger(__name__)

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json; charset=utf-8"


class TextFrameWebSocketAdapter(ASGIWebSocketAdapter):
    """graphql-transport-ws messages are JSON text: text frames, never binary. (strawberry sends
    bytes from `encode_json` as binary frames, which graphql-ws, Apollo and browsers reject.)"""

    async def send_json(self, message: Mapping[str, object]) -> None:
        await self.send_text(orjson.dumps(message).decode())

    async def send_text(self, text: str) -> None:
        try:
            await self.ws.send_text(text)
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc

    async def send_texts(self, head: bytes, texts: list[bytes], tail: bytes) -> None:
        """Messages of JSON made of parts already serialized (head + text + tail: the hub's
        shared `next` payloads, events/shared.py), in one socket write where the server allows
        (events/frames.py)."""
        if self._batch_writer is None:
            self._batch_writer = batch_writer() or self._one_by_one
        await self._batch_writer(head, texts, tail)

    async def _one_by_one(self, head: bytes, texts: list[bytes], tail: bytes) -> None:
        for text in texts:
            await self.send_text((head + text + tail).decode())

    _batch_writer: TextBatchWriter | None = None


class GraphQLApp(GraphQL[Context, None]):
    def __init__(self, settings: Settings, database: Database, tracer: Any = None) -> None:
        protocols = [GRAPHQL_TRANSPORT_WS_PROTOCOL]
        if settings.legacy_graphql_ws:
            protocols.append(GRAPHQL_WS_PROTOCOL)
        super().__init__(
            build_schema(settings, tracer),
            graphql_ide="graphiql" if settings.graphiql_enabled else None,
            allow_queries_via_get=True,
            subscription_protocols=protocols,
            connection_init_wait_timeout=timedelta(seconds=settings.ws_init_timeout_s),
            max_subscriptions_per_connection=settings.ws_max_subscriptions,
        )
        self.settings = settings
        self.database = database
        self._limiter: RateLimiter | None = None
        self.hub: EventHub | None = None
        self.connections = ConnectionRegistry()

    graphql_transport_ws_handler_class = TransportWSHandler
    websocket_adapter_class = TextFrameWebSocketAdapter

    async def render_graphql_ide(self, request: Request) -> Response:
        return graphiql_page()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            response = await self.run(Request(scope=scope, receive=receive))
        except HTTPException as exc:
            # strawberry answers these in text/plain; every failure is JSON with a code here.
            code = HTTP_ERROR_CODES.get(exc.status_code, "BAD_REQUEST")
            response = error_response(exc.status_code, exc.reason, code)
        except Exception as exc:  # raised outside the resolvers: an extension, the commit
            response = failure_response(exc)
        await response(scope, receive, send)

    async def execute_single(  # type: ignore[override]
        self, request: Request, request_adapter: Any, sub_response: Response, **kwargs: Any
    ) -> ExecutionResult:
        data = kwargs["request_data"]
        if is_subscription(data.query, data.operation_name, None):
            raise HTTPException(
                400,
                "subscriptions are served over WebSocket at /graphql (graphql-transport-ws)",
            )
        context: Context = kwargs["context"]
        adapters = {"request_adapter": request_adapter, "sub_response": sub_response}
        return await retrying(
            lambda: super(GraphQLApp, self).execute_single(request=request, **adapters, **kwargs),
            context.request_id,
        )

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        if not admit(context, self):
            raise ConnectionRejectionError
        unset: UnsetType = UNSET
        return unset

    def limiter(self) -> RateLimiter:
        """One per app; made on first use, once the database is open."""
        if self._limiter is None:
            assert self.database.sessionmaker is not None, "database not opened"
            self._limiter = RateLimiter(
                self.database.sessionmaker,
                self.settings.rate_limit_points,
                self.settings.rate_limit_window_s,
            )
        return self._limiter

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        if result.errors:
            request_id = getattr(request.state, "request_id", None) or uuid.uuid4().hex
            result.errors = shape_errors(result.errors, request_id, self.settings.is_production)
        processed = await super().process_result(request, result)
        request_error = result.data is None and all(e.path is None for e in result.errors or ())
        if request_error and "graphql-response+json" in request.headers.get("accept", ""):
            # The document did not parse, validate or take its variables: nothing was executed,
            # so there is no data entry at all (and the response is a 400, see create_response).
            processed.pop("data", None)
        return processed

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        results = response_data if isinstance(response_data, list) else [response_data]
        codes = {
            (error.get("extensions") or {}).get("code")
            for result in results
            for error in result.get("errors") or ()
            if isinstance(error, dict)
        }
        for code in sorted(c for c in codes if isinstance(c, str)):
            note_outcome(code)
            break
        if "UNAVAILABLE" in codes:
            # The database is not there: not the request's fault, and worth a retry shortly.
            response.status_code = UNAVAILABLE.status
            response.headers.update(UNAVAILABLE.headers())
        if getattr(sub_response, "graphql_response_json", False):
            # GraphQL over HTTP: with this media type a request that produced no data (it did
            # not parse or validate) is a 400, not a 200.
            response.headers["content-type"] = GRAPHQL_RESPONSE_JSON
            if (
                isinstance(response_data, dict)
                and "data" not in response_data
                and response.status_code == 200
            ):
                response.status_code = 400
        return response

    def decode_json(self, data: str | bytes) -> object:
        # orjson refuses what json.loads lets through: unpaired surrogates, invalid UTF-8 and
        # nesting past 1,024 levels (a RecursionError, and a 500, in json.loads).
        return orjson.loads(data)

    def encode_json(self, data: object) -> bytes:
        # orjson: faster, and it embeds the fast path's PostgreSQL JSON (orjson.Fragment) as is.
        return orjson.dumps(data)

    async def get_context(self, request: Request | WebSocket, response: Response | None) -> Context:  # type: ignore[override]
        assert self.database.sessionmaker is not None, "database not opened"
        viewer_id, bad_token = authenticate(request.headers.get("authorization"), self.settings)
        replicas = self.database.replicas
        context = Context(
            request_id=getattr(request.state, "request_id", None) or uuid.uuid4().hex,
            request=request,
            response=response,
            settings=self.settings,
            sessionmaker=self.database.sessionmaker,
            read_scalar=self.database.read_scalar
            if replicas is None
            else replicas.reader(viewer_id, read_after(request)),
            replicas=replicas,
            statements=self.database if self.database.write_pool is not None else None,
            limiter=self.limiter(),
            deadline=time.monotonic() + self.settings.request_timeout_s,
            hub=self.hub,
            viewer_id=viewer_id,
            bad_token=bad_token,
        )
        request.state.request_id = context.request_id  # for the errors of this request
        if response is not None and "graphql-response+json" in request.headers.get("accept", ""):
            response.graphql_response_json = True  # type: ignore[attr-defined]
        return context


HTTP_ERROR_CODES = {
    400: "BAD_REQUEST",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


def create_app(
    settings: Settings, *, database: Database | None = None, tracer_provider: Any = None
) -> Starlette:
    """The app. With `database` given (tests), the caller owns its lifecycle. Traces go to
    `tracer_provider` when given (tests), else by OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set."""
    owned = database is None
    db = database or Database(settings)
    db.read_scalar = counted(db.read_scalar)  # type: ignore[method-assign]
    db.fetch = counted(db.fetch)  # type: ignore[method-assign]
    # --- observability: metrics, tracing (README, Observability) ---
    tracing = None
    if tracer_provider is not None or settings.otel_endpoint:
        from graphql_api.observability.tracing import Tracing, provider_from_settings

        provider = tracer_provider or provider_from_settings(settings)
        tracing = Tracing(provider, owned=tracer_provider is None)
    pools = None
    if settings.metrics_enabled:
        from graphql_api.observability.metrics import PoolWatch

        pools = PoolWatch(db)
    observer = Observer(
        metrics=settings.metrics_enabled,
        pools=pools,
        tracer=tracing.tracer if tracing is not None else None,
    )
    # ---
    graphql = GraphQLApp(settings, db, observer.tracer)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        log.debug("starting with %s", settings.describe())
        if owned:
            await db.open()
        uncount = count_engine_statements(db.engine) if db.engine is not None else None
        if pools is not None:
            pools.watch_engine()
        if tracing is not None:
            tracing.start()
        if db.url is not None:
            # Listens once the first subscription arrives. LISTEN needs a session of its own, which
            # PgBouncer in transaction mode does not give: then it takes the direct URL.
            graphql.hub = EventHub(settings.database_direct_url or db.url)
            # Everything loaded so far lives as long as the process: keep it out of the cyclic
            # garbage collector's scans, which otherwise show up as latency spikes.
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if graphql.hub is not None:
                await graphql.hub.stop()
            if owned:
                await db.close()
            if uncount is not None:
                uncount()
            if tracing is not None:
                tracing.stop()
            if settings.metrics_enabled:
                from graphql_api.observability.metrics import process_exited

                process_exited()

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        reason = await db.readiness()
        if reason is not None:
            return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
        return JSONResponse({"status": "ready"})

    front = GraphQLFront(graphql, settings, db, graphql.limiter, observer)
    routes: list[Any] = [
        Route("/graphql", front, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
    ]
    if settings.graphiql_enabled:
        routes.append(Mount(ASSETS_PATH, graphiql_assets()))
    if pools is not None:
        from graphql_api.observability.metrics import metrics_endpoint

        routes.append(Route("/metrics", metrics_endpoint(settings.metrics_token, pools)))
    middleware = [Middleware(RecordRawSend)]
    if tracing is not None:
        middleware.append(tracing.middleware())
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["authorization", "content-type", "idempotency-key"],
                expose_headers=[
                    "X-RateLimit-Limit",
                    "X-RateLimit-Remaining",
                    "X-RateLimit-Reset",
                    "Idempotent-Replayed",
                ],
                max_age=600,
            )
        )
    app = App(routes=routes, lifespan=lifespan, middleware=middleware)
    if len(middleware) == 1:  # no tracing or CORS middleware, which must see every request
        app.front = front
    app.state.database = db
    return app


class App(Starlette):
    """A POST to /graphql goes straight to the front (graphql_api/http_front.py), which answers
    its own failures as JSON: Starlette's router and middleware (error pages, exception
    handlers, route matching, three wrappers of each `send`) cost a request answered from a
    cached plan a tenth of its time. Everything else takes the usual way."""

    front: GraphQLFront | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        front = self.front
        if (
            front is not None
            and scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == "/graphql"
            and not scope.get("root_path")
        ):
            scope["app"] = self
            await front(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def app_from_env() -> Starlette:
    """The uvicorn factory (`graphql_api.app:app_from_env`), used by `graphql-api serve`."""
    from graphql_api.logs import configure_logging

    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format_in_force)
    return create_app(settings)
