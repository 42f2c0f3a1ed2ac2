"""What operators see: Prometheus metrics summed over `serve --workers 2`, OpenTelemetry traces
continuing the caller's `traceparent`, and JSON log lines with one access line per request."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from graphql_api.app import create_app
from tests.conftest import make_settings
from tests.gql import Api, project
from tests.servers import serving

TOKEN = "metrics-" + "t" * 32
VIEWER = "query Viewer { viewer { id } }"
BOARD = """query Board($id: ID!) {
  node(id: $id) { ... on Project { tasks(first: 5) { nodes { identifier title } } } }
}"""


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def total(text: str, name: str, **labels: str) -> float:
    return sum(
        value
        for have, value in samples(text, name)
        if all(have.get(k) == v for k, v in labels.items())
    )


async def test_metrics_add_up_across_two_workers_and_need_the_token(
    fresh_database_url: str,
) -> None:
    log: list[str] = []
    env = {"METRICS": "on", "METRICS_TOKEN": TOKEN, "LOG_FORMAT": "json"}
    with serving(fresh_database_url, log=log, workers=2, **env) as host:
        base = f"http://{host}"
        # A worker logs its start-up just before it listens: let the first connection retry.
        retrying = httpx.AsyncHTTPTransport(retries=3)
        async with httpx.AsyncClient(base_url=base, transport=retrying) as http:
            assert (await http.get("/metrics")).status_code == 401
            wrong = await http.get("/metrics", headers={"authorization": "Bearer nope"})
            assert wrong.status_code == 401
            assert wrong.headers["www-authenticate"].startswith("Bearer")
            api = Api(http)
            owner = await api.register()  # one anonymous mutation
        auth = {"authorization": f"Bearer {owner.token}"}

        async def viewer() -> None:
            # A connection each, so that both workers take some of them.
            async with httpx.AsyncClient(base_url=base) as client:
                response = await client.post("/graphql", json={"query": VIEWER}, headers=auth)
                assert response.status_code == 200 and "errors" not in response.json()

        sent = 0
        for _ in range(20):  # until both workers have answered some (checked again below)
            await asyncio.gather(*(viewer() for _ in range(10)))
            sent += 10
            if len(access_pids(log)) >= 2:
                break
        async with httpx.AsyncClient(base_url=base) as http:
            await http.post("/graphql", content=b"{not json", headers=auth | json_type())
        scrapes = []
        for _ in range(4):  # each on a new connection: whichever worker answers, all add up
            async with httpx.AsyncClient(base_url=base) as client:
                response = await client.get(
                    "/metrics", headers=auth | {"authorization": f"Bearer {TOKEN}"}
                )
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain")
            scrapes.append(response.text)
    assert len(access_pids(log)) == 2, "one worker answered every request: nothing was summed"
    for text in scrapes:
        assert total(text, "graphql_requests_total") == sent + 2
        assert (
            total(
                text,
                "graphql_requests_total",
                operation_type="query",
                operation_name="Viewer",
                code="ok",
            )
            == sent
        )
        assert total(text, "graphql_requests_total", operation_type="mutation", code="ok") == 1
        assert total(text, "graphql_requests_total", code="BAD_REQUEST", operation_name="") == 1
        assert total(text, "graphql_request_duration_seconds_count") == sent + 2
        assert total(text, "graphql_request_sql_statements_count") == sent + 2
        assert total(text, "graphql_request_sql_statements_sum") >= sent  # one read at least each
        pools = {
            labels["pool"] for labels, _ in samples(text, "graphql_db_pool_connections_in_use")
        }
        assert pools == {"engine", "read", "write"}
        for name in (
            "graphql_websocket_connections",
            "graphql_subscribers",
            "graphql_rate_limited_total",
        ):
            assert samples(text, name), name


def access_pids(log: list[str]) -> set[int]:
    return {line["pid"] for line in json_lines(log) if line["logger"] == "graphql_api.access"}


def json_type() -> dict[str, str]:
    return {"content-type": "application/json"}


def json_lines(log: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in list(log) if line.strip()]


async def test_json_logs_have_an_access_line_per_request(fresh_database_url: str) -> None:
    log: list[str] = []
    answers: list[httpx.Response] = []
    with serving(fresh_database_url, log=log, LOG_FORMAT="json") as host:
        async with httpx.AsyncClient(base_url=f"http://{host}") as http:
            api = Api(http)
            owner = await api.register()
            ws = await api.workspace(owner)
            board = await project(api, owner, ws["id"])
            auth = {"authorization": f"Bearer {owner.token}"}
            body = {"query": BOARD, "variables": {"id": board["id"]}, "operationName": "Board"}
            for _ in range(2):  # compiled, then answered from the cached plan
                answers.append(await http.post("/graphql", json=body, headers=auth))
            answers.append(await http.post("/graphql", json={"query": "{ nope }"}, headers=auth))
            answers.append(await http.post("/graphql", content=b"[1", headers=json_type()))
    user_uuid = base64.urlsafe_b64decode(owner.id + "==").decode().split(":")[1]
    lines = json_lines(log)  # every line parses as JSON
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    access = {line["request_id"]: line for line in lines if line["logger"] == "graphql_api.access"}
    assert len(access) == 3 + 2 + 2  # register, workspace, project; the board twice; two bad
    first, cached, invalid, broken = (access[r.headers["x-request-id"]] for r in answers)
    for line in (first, cached):
        assert line["method"] == "POST" and line["path"] == "/graphql" and line["status"] == 200
        assert line["operation_name"] == "Board" and line["operation_type"] == "query"
        assert line["viewer_id"] == user_uuid
        assert line["outcome"] == "ok" and line["sql_statements"] >= 1
        assert line["duration_ms"] > 0
        assert line["execution"] == "fast"
    assert cached["sql_statements"] == 1
    assert invalid["outcome"] == "BAD_REQUEST" and invalid["execution"] == "resolvers"
    assert broken["outcome"] == "BAD_REQUEST" and broken["status"] == 400
    mutations = [line for line in access.values() if line["operation_type"] == "mutation"]
    assert len(mutations) == 3 and all(line["outcome"] == "ok" for line in mutations)
    assert all(line["sql_statements"] >= 1 for line in mutations)
    assert not [line for line in lines if line["logger"] == "uvicorn.access"]


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def descends_from(
    span: ReadableSpan, ancestor: ReadableSpan, by_id: dict[int, ReadableSpan]
) -> bool:
    parent = span.parent
    while parent is not None:
        if parent.span_id == ancestor.context.span_id:
            return True
        above = by_id.get(parent.span_id)
        parent = above.parent if above is not None else None
    return False


async def test_traces_continue_traceparent_and_hold_the_sql(
    fresh_database_url: str, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    app = create_app(make_settings(database_url=fresh_database_url), tracer_provider=provider)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http,
    ):
        api = Api(http)
        owner = await api.register()
        ws = await api.workspace(owner)
        board = await project(api, owner, ws["id"])
        auth = {"authorization": f"Bearer {owner.token}"}
        body = {"query": BOARD, "variables": {"id": board["id"]}, "operationName": "Board"}
        trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
        for attempt in range(2):  # through the executor, then from the cached plan
            exporter.clear()
            parent = f"00-{trace_id}-00f067aa0ba902b{attempt}-01"
            response = await http.post(
                "/graphql", json=body, headers=auth | {"traceparent": parent}
            )
            assert response.status_code == 200 and "errors" not in response.json()
            finished = exporter.get_finished_spans()
            assert {s.context.trace_id for s in finished} == {int(trace_id, 16)}
            by_id = {s.context.span_id: s for s in finished}
            (server,) = [s for s in finished if s.kind.name == "SERVER"]
            assert server.parent is not None and server.parent.span_id == int(
                f"00f067aa0ba902b{attempt}", 16
            )
            (operation,) = [s for s in finished if s.name == "Board"]
            assert descends_from(operation, server, by_id)
            sql = [
                s
                for s in finished
                if s.attributes and s.attributes.get("db.system") == "postgresql"
            ]
            assert sql, [s.name for s in finished]
            assert all(descends_from(s, operation, by_id) for s in sql)
        # A request without traceparent starts a trace of its own: one trace per request.
        exporter.clear()
        await http.post("/graphql", json={"query": VIEWER}, headers=auth)
        assert len({s.context.trace_id for s in exporter.get_finished_spans()}) == 1
        assert int(trace_id, 16) not in {s.context.trace_id for s in exporter.get_finished_spans()}
