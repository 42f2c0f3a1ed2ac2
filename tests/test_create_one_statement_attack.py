"""An outside review of createTask as one statement on the primary's pool for such writes
(db/compiled.py, DbSession.run, Database.fetch and its StatementPool, resolvers/tasks.create_task),
through the real app against PostgreSQL (DB_POOL_SIZE sizes that pool).

The first three tests failed on the change as first written (the deadline lifted before a
connection was in hand; the writes on the fast path's read pool; a request id the audit row
could not hold); the others guard behaviour that held: tenant isolation, role refusals, error
order, the NOTIFY's shape and routing, numbering under concurrency and races, statement
counting, a killed backend, odd inputs, and the transactional paths (several fields, an
Idempotency-Key)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import asyncpg
import orjson
import pytest

from db.urls import asyncpg_dsn
from graphql_api import logs
from graphql_api.observability import observer as observer_module
from graphql_api.observability.request_log import RequestLog
from graphql_api.schema.relay import from_global_id, to_global_id
from tests.conftest import asgi_websocket
from tests.gql import Account, Api, error_codes, label, project
from tests.test_live_updates import EVENTS
from tests.test_one_statement import LEAN, _transaction_control, _world, served_app, written
from tests.test_one_statement_attack import (
    _post_until_gone,
    _project_locked,
    _waiting_on_a_lock,
)

CREATE = """mutation($input: CreateTaskInput!) { createTask(input: $input) {
  task { id identifier number title description dueAt }
  userErrors { code message field } } }"""
WORKSPACE_OF = "query($id: ID!) { node(id: $id) { ... on Project { workspace { id } } } }"
LABELS_OF = "query($id: ID!) { node(id: $id) { ... on Task { labels { id } } } }"
FAST_READ = "{ __typename viewer { __typename id email displayName createdAt } }"
ARCHIVE = "mutation($id: ID!) { archiveProject(input: {id: $id}) { userErrors { code } } }"


def _uuid(global_id: str) -> uuid.UUID:
    parsed = from_global_id(global_id)
    assert parsed is not None, global_id
    return uuid.UUID(str(parsed[1]))


async def _workspace_of(api: Api, owner: Account, project_gid: str) -> str:
    data = await api.ok(WORKSPACE_OF, {"id": project_gid}, owner.token)
    ws: str = data["node"]["workspace"]["id"]
    return ws


async def _timed_post(
    api: Api, query: str, variables: dict[str, Any], token: str
) -> tuple[float, dict[str, Any]]:
    start = time.monotonic()
    response = await api.http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"authorization": f"Bearer {token}"},
    )
    body: dict[str, Any] = response.json()
    body["_status"] = response.status_code
    return time.monotonic() - start, body


async def _listening(dsn: str) -> tuple[asyncpg.Connection, list[dict[str, Any]]]:
    conn = await asyncpg.connect(dsn)
    heard: list[dict[str, Any]] = []
    await conn.add_listener("task_events", lambda *args: heard.append(orjson.loads(args[-1])))
    return conn, heard


async def _counter(dsn: str, project_gid: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        value: int = await conn.fetchval(
            "SELECT task_counter FROM projects WHERE id = $1", _uuid(project_gid)
        )
    finally:
        await conn.close()
    return value


def _errors(answer: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    return [(e["code"], e["field"]) for e in answer["createTask"]["userErrors"]]


# --- faults ---------------------------------------------------------------------------------


async def test_a_create_queued_for_a_pool_connection_is_still_cut_by_its_deadline(
    fresh_database_url: str,
) -> None:
    """Creates queued for the write pool's one connection behind others that wait on a busy
    project: the deadline cuts a queued one; it is lifted only once a connection is in hand and
    the statement is sent (then the statement timeout bounds it). Lifted before the wait, the
    answers came one statement timeout apart each (1, 2, 3, 4 and 5 s here)."""
    dsn = asyncpg_dsn(fresh_database_url)
    async with served_app(fresh_database_url) as (_, api, _sent):
        owner, proj, _ = await _world(api)
    settings = {"pool_size": 1, "request_timeout_s": 1.5, "statement_timeout_ms": 1000}
    async with served_app(fresh_database_url, **settings) as (_, api, _sent):
        await api.ok("{ viewer { id } }", {}, owner.token)  # its rate-limit reservation
        locker, locked = await _project_locked(dsn, proj["id"])
        try:
            answers = await asyncio.gather(
                *(
                    _timed_post(
                        api,
                        LEAN,
                        {"input": {"projectId": proj["id"], "title": f"q{i}"}},
                        owner.token,
                    )
                    for i in range(5)
                )
            )
        finally:
            await locked.commit()
            await locker.close()
    for _, body in answers:
        assert error_codes(body) == ["TIMEOUT"], body
    slowest = max(elapsed for elapsed, _ in answers)
    # The deadline is 1.5 s; a statement sent before it passes ends by its 1 s timeout at most
    # (one second more for a loaded machine; queued one after another, the last took 5 s).
    assert slowest < 1.5 + 1.0 + 1.0, [round(e, 2) for e, _ in answers]
    assert await written(dsn) == (0, 0, 0, 0, 0)


async def test_creates_waiting_on_one_tenants_project_do_not_starve_other_tenants_reads(
    fresh_database_url: str,
) -> None:
    """Writes waiting on a project's counter row (an archive in progress, a hot project) hold
    their connections for up to statement_timeout each: on a pool of their own, so no tenant's
    fast-path reads queue behind one tenant's blocked writes (on the read pool, as first
    written, another workspace's read waited 3 s)."""
    dsn = asyncpg_dsn(fresh_database_url)
    async with served_app(fresh_database_url) as (_, api, _sent):
        owner, proj, _ = await _world(api)
        stranger = await api.register("stranger")
        await api.workspace(stranger, "Elsewhere")
    settings = {"read_pool_size": 2, "statement_timeout_ms": 3000}
    async with served_app(fresh_database_url, **settings) as (app, api, _sent):
        database = app.state.database
        reads: list[str] = []
        read_scalar = database.read_scalar

        async def noted(sql: str, params: tuple[Any, ...]) -> Any:
            reads.append(sql)
            return await read_scalar(sql, params)

        database.read_scalar = noted
        for account in (owner, stranger):
            await api.ok(FAST_READ, {}, account.token)  # rate-limit reservations, plans
        reads.clear()
        locker, locked = await _project_locked(dsn, proj["id"])
        try:
            writes = [
                asyncio.create_task(
                    api.post(
                        LEAN, {"input": {"projectId": proj["id"], "title": f"w{i}"}}, owner.token
                    )
                )
                for i in range(2)
            ]
            await _waiting_on_a_lock(dsn, 2)
            elapsed, body = await _timed_post(api, FAST_READ, {}, stranger.token)
        finally:
            await locked.commit()
            await locker.close()
        await asyncio.gather(*writes)
    assert reads, "the read did not take the fast path: the test proves nothing"
    assert "errors" not in body, body
    assert elapsed < 1.0, f"another tenant's read waited {elapsed:.2f} s for blocked writes"


async def test_a_client_leaving_while_its_create_is_queued_for_the_pool_leaves_nothing(
    fresh_database_url: str,
) -> None:
    """Pool of one: a create holds it, waiting on its locked project; a second create queues
    for the pool, and its client leaves. It ends at once, and once the project is free only the
    first create is written, numbered 1."""
    dsn = asyncpg_dsn(fresh_database_url)
    async with served_app(fresh_database_url) as (_, api, _sent):
        owner, proj, _ = await _world(api)
    async with served_app(fresh_database_url, pool_size=1) as (app, api, _sent):
        await api.ok("{ viewer { id } }", {}, owner.token)
        locker, locked = await _project_locked(dsn, proj["id"])
        try:
            first = asyncio.create_task(
                api.post(LEAN, {"input": {"projectId": proj["id"], "title": "held"}}, owner.token)
            )
            await _waiting_on_a_lock(dsn)
            gone = asyncio.Event()
            body = orjson.dumps(
                {"query": LEAN, "variables": {"input": {"projectId": proj["id"], "title": "left"}}}
            )
            queued = asyncio.create_task(_post_until_gone(app, body, owner.token, gone))
            await asyncio.sleep(0.3)
            assert not queued.done()
            gone.set()
            async with asyncio.timeout(1):
                await queued
        finally:
            await locked.commit()
            await locker.close()
        made = (await first)["data"]["createTask"]["task"]
        assert made["number"] == 1
        await asyncio.sleep(0.3)
        again = await api.ok(LEAN, {"input": {"projectId": proj["id"], "title": "n"}}, owner.token)
        assert again["createTask"]["task"]["number"] == 2
    assert await written(dsn) == (2, 2, 0, 2, 2)


# --- tenant isolation, roles, error order ---------------------------------------------------


async def test_a_foreign_project_is_not_found_and_the_attempt_leaves_no_trace(
    fresh_database_url: str,
) -> None:
    """A user guessing another workspace's project id: NOT_FOUND on projectId whatever else is
    wrong, the same answer as for an id that does not exist (archived or not), no wait on that
    project's locked counter row, no number, no row, no NOTIFY."""
    dsn = asyncpg_dsn(fresh_database_url)
    async with served_app(fresh_database_url) as (_, api, _sent):
        attacker, _own, _ = await _world(api)
        victim = await api.register("victim")
        ws = await api.workspace(victim, "Victim")
        target = await project(api, victim, ws["id"], "VIC")
        victim_label = (await label(api, victim, ws["id"], "secret"))["id"]
        await api.ok("{ viewer { id } }", {}, attacker.token)
        nowhere = to_global_id("Project", uuid.uuid4())
        variants: list[dict[str, Any]] = [
            {"title": "pwn"},
            {"title": ""},  # a bad title must not be reported before the project
            {"title": "x" * 201},
            {"title": "pwn", "labelIds": [victim_label]},
            {"title": "pwn", "assigneeId": victim.id},
            {"title": "pwn", "assigneeId": "not an id"},
            {"title": "pwn", "labelIds": ["TGFiZWw6MA=="] * 3},
        ]
        listener, heard = await _listening(dsn)
        locker, locked = await _project_locked(dsn, target["id"])
        try:
            for extra in variants:
                answers = []
                for pid in (target["id"], nowhere):
                    elapsed, body = await _timed_post(
                        api, CREATE, {"input": {"projectId": pid, **extra}}, attacker.token
                    )
                    assert elapsed < 2.0, (extra, elapsed)  # the locked row was not waited on
                    assert "errors" not in body, body
                    answers.append(body["data"]["createTask"])
                assert answers[0] == answers[1], (extra, answers)
                assert answers[0]["task"] is None
                assert _errors({"createTask": answers[0]}) == [
                    ("NOT_FOUND", ["input", "projectId"])
                ], extra
        finally:
            await locked.commit()
            await locker.close()
        # Archived, it is still not there for the attacker (CONFLICT would say it exists).
        await api.ok(ARCHIVE, {"id": target["id"]}, victim.token)
        body = await api.post(
            CREATE, {"input": {"projectId": target["id"], "title": "t"}}, attacker.token
        )
        assert _errors(body["data"]) == [("NOT_FOUND", ["input", "projectId"])]
        await asyncio.sleep(0.3)
        await listener.close()
    assert heard == []
    assert await _counter(dsn, target["id"]) == 0
    assert await written(dsn) == (0, 0, 0, 0, 0)


async def test_a_viewer_is_forbidden_first_and_a_member_meets_the_projects_checks_first(
    fresh_database_url: str,
) -> None:
    """A VIEWER: FORBIDDEN whatever else is wrong with the input, nothing written. A MEMBER on an
    archived project with a bad title: CONFLICT on projectId (the project's checks come first)."""
    dsn = asyncpg_dsn(fresh_database_url)
    async with served_app(fresh_database_url) as (_, api, _sent):
        owner, proj, labels = await _world(api)
        ws_id = await _workspace_of(api, owner, proj["id"])
        viewer = await api.register("viewer")
        member = await api.register("member")
        await api.add(owner, ws_id, viewer, "VIEWER")
        await api.add(owner, ws_id, member, "MEMBER")
        listener, heard = await _listening(dsn)
        for extra in (
            {"title": "t"},
            {"title": ""},
            {"title": "t", "labelIds": [*labels, "TGFiZWw6MA=="]},
            {"title": "t", "assigneeId": "VXNlcjow"},
        ):
            body = await api.post(
                CREATE, {"input": {"projectId": proj["id"], **extra}}, viewer.token
            )
            assert "errors" not in body, body
            assert [c for c, _ in _errors(body["data"])] == ["FORBIDDEN"], (extra, body)
        await api.ok(ARCHIVE, {"id": proj["id"]}, owner.token)
        body = await api.post(
            CREATE, {"input": {"projectId": proj["id"], "title": " "}}, member.token
        )
        assert _errors(body["data"]) == [("CONFLICT", ["input", "projectId"])], body
        await asyncio.sleep(0.3)
        await listener.close()
    assert heard == []
    assert await written(dsn) == (0, 0, 0, 0, 0)


# --- the NOTIFY ------------------------------------------------------------------------------


async def test_the_notify_names_the_projects_workspace_and_reaches_only_its_subscribers(
    fresh_database_url: str,
) -> None:
    """The statement fills in "workspace" (jsonb_set): LISTEN sees exactly the payload's keys
    with the project's workspace; a subscriber of that workspace gets the event through the hub,
    one of another workspace does not."""
    dsn = asyncpg_dsn(fresh_database_url)
    async with served_app(fresh_database_url) as (app, api, sent):
        owner, proj, labels = await _world(api)
        ws_id = await _workspace_of(api, owner, proj["id"])
        other = await api.register("other")
        other_ws = await api.workspace(other, "Other")
        other_proj = await project(api, other, other_ws["id"], "OTH")
        listener, heard = await _listening(dsn)
        async with asgi_websocket(app) as mine, asgi_websocket(app) as theirs:
            await mine.init(owner.token)
            await theirs.init(other.token)
            await mine.send(
                {
                    "id": "m",
                    "type": "subscribe",
                    "payload": {"query": EVENTS, "variables": {"w": ws_id}},
                }
            )
            await theirs.send(
                {
                    "id": "t",
                    "type": "subscribe",
                    "payload": {"query": EVENTS, "variables": {"w": other_ws["id"]}},
                }
            )
            # Until the hub delivers (subscribing is asynchronous).
            for attempt in range(50):
                await api.ok(
                    LEAN,
                    {"input": {"projectId": proj["id"], "title": f"sync{attempt}"}},
                    owner.token,
                )
                try:
                    await asyncio.wait_for(mine.receive(), 0.3)
                    break
                except TimeoutError:
                    continue
            else:
                raise AssertionError("the subscription never delivered an event")
            while True:  # the events of earlier attempts
                try:
                    await asyncio.wait_for(mine.receive(), 0.3)
                except TimeoutError:
                    break
            heard.clear()
            sent.reset()
            made = await api.ok(
                LEAN,
                {"input": {"projectId": proj["id"], "title": "announced", "labelIds": labels}},
                owner.token,
            )
            # The one-statement path: no SAVEPOINT of a mutation field. (The subscription's
            # own short sessions, loading earlier events, may BEGIN meanwhile on the engine.)
            queries = sent.reset()
            assert any(q.startswith("WITH counter") for q in queries), queries
            assert not [q for q in queries if q.upper().startswith("SAVEPOINT")], queries
            task = made["createTask"]["task"]
            event = await asyncio.wait_for(mine.receive(), 5)
            assert event["id"] == "m" and event["type"] == "next", event
            delivered = event["payload"]["data"]["taskEvents"]
            assert delivered["kind"] == "CREATED" and delivered["taskId"] == task["id"]
            assert delivered["task"] == {"identifier": task["identifier"], "title": "announced"}
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(theirs.receive(), 0.5)
            # A create in the other workspace reaches only its subscriber.
            await api.ok(
                LEAN, {"input": {"projectId": other_proj["id"], "title": "x"}}, other.token
            )
            assert (await asyncio.wait_for(theirs.receive(), 5))["id"] == "t"
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(mine.receive(), 0.5)
        await asyncio.sleep(0.2)
        await listener.close()
    ours = [n for n in heard if n["task"] == str(_uuid(task["id"]))]
    assert len(ours) == 1, heard
    [note] = ours
    assert set(note) == {"kind", "task", "workspace", "project", "actor", "at"}, note
    assert note["kind"] == "CREATED"
    assert note["workspace"] == str(_uuid(ws_id))
    assert note["project"] == str(_uuid(proj["id"]))
    assert note["actor"] == str(_uuid(owner.id))
    assert datetime.fromisoformat(note["at"]).tzinfo is not None
    assert [n["workspace"] for n in heard if n["task"] != note["task"]] == [
        str(_uuid(other_ws["id"]))
    ]


# --- concurrency -----------------------------------------------------------------------------


@pytest.mark.parametrize("pool", [1, 2])
async def test_concurrent_creates_on_a_small_pool_number_without_gaps(
    fresh_database_url: str, pool: int
) -> None:
    dsn = asyncpg_dsn(fresh_database_url)
    async with served_app(fresh_database_url, pool_size=pool) as (app, api, _sent):
        owner, proj, labels = await _world(api)
        ws_id = await _workspace_of(api, owner, proj["id"])
        second = await project(api, owner, ws_id, "TWO")
        listener, heard = await _listening(dsn)
        made = await asyncio.gather(
            *(
                api.ok(
                    LEAN,
                    {
                        "input": {
                            "projectId": (proj, second)[i % 2]["id"],
                            "title": f"c{i}",
                            "labelIds": labels[: i % 3],
                        }
                    },
                    owner.token,
                )
                for i in range(24)
            )
        )
        await asyncio.sleep(0.3)
        await listener.close()
        read_pool = app.state.database.read_pool
        assert read_pool.get_size() <= pool
    by_key: dict[str, list[int]] = {}
    for m in made:
        key, number = m["createTask"]["task"]["identifier"].split("-")
        by_key.setdefault(key, []).append(int(number))
    assert {k: sorted(v) for k, v in by_key.items()} == {
        "ONE": list(range(1, 13)),
        "TWO": list(range(1, 13)),
    }
    assert len(heard) == 24 and {n["workspace"] for n in heard} == {str(_uuid(ws_id))}
    labelled = sum(len(labels[: i % 3]) for i in range(24))
    assert await written(dsn) == (24, 24, labelled, 24, 24)


RACES: dict[str, tuple[str, str]] = {
    "archive": ("UPDATE projects SET archived_at = now() WHERE id = $1", "CONFLICT"),
    "label deleted": ("UPDATE labels SET deleted_at = now() WHERE id = $1", "NOT_FOUND"),
    "creator demoted": ("UPDATE memberships SET role = 'VIEWER' WHERE user_id = $1", "FORBIDDEN"),
}


@pytest.mark.parametrize("race", list(RACES))
async def test_creates_racing_a_change_either_commit_whole_or_leave_nothing(
    fresh_database_url: str, race: str
) -> None:
    """Creates stream in while the change commits: every answer is a task, numbered 1..k with no
    gap, or the change's userError; the database holds k tasks with their labels, audit rows
    and NOTIFYs, and the counter is k."""
    dsn = asyncpg_dsn(fresh_database_url)
    sql, code = RACES[race]
    async with served_app(fresh_database_url, pool_size=2) as (_, api, _sent):
        owner, proj, labels = await _world(api)
        ws_id = await _workspace_of(api, owner, proj["id"])
        creator = await api.register("creator")
        await api.add(owner, ws_id, creator, "MEMBER")
        await api.ok("{ viewer { id } }", {}, creator.token)
        target = {
            "archive": _uuid(proj["id"]),
            "label deleted": _uuid(labels[0]),
            "creator demoted": _uuid(creator.id),
        }[race]
        listener, heard = await _listening(dsn)

        async def one(i: int) -> dict[str, Any]:
            await asyncio.sleep(0.01 * i)
            return await api.post(
                LEAN,
                {"input": {"projectId": proj["id"], "title": f"r{i}", "labelIds": labels}},
                creator.token,
            )

        async def change_later() -> None:
            await asyncio.sleep(0.15)
            conn = await asyncpg.connect(dsn)
            try:
                await conn.execute(sql, target)
            finally:
                await conn.close()

        changed = asyncio.create_task(change_later())
        answers = await asyncio.gather(*(one(i) for i in range(30)))
        await changed
        await asyncio.sleep(0.3)
        await listener.close()
    numbers = []
    for body in answers:
        assert "errors" not in body, body
        result = body["data"]["createTask"]
        if result["task"] is not None:
            numbers.append(result["task"]["number"])
        else:
            assert [e["code"] for e in result["userErrors"]] == [code], result
    k = len(numbers)
    assert sorted(numbers) == list(range(1, k + 1))
    assert 0 < k < 30, "the race did not happen"
    assert len(heard) == k
    assert await _counter(dsn, proj["id"]) == k
    assert await written(dsn) == (k, k, 2 * k, k, k)


# --- observability, failures ---------------------------------------------------------------


async def test_each_requests_statement_count_includes_the_pool_write(
    fresh_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sql_statements in the access line counts what was sent: the write on the pool (and the
    checks after a refusal), as the engine's statements are counted."""
    entries: list[RequestLog] = []
    real: Callable[..., None] = logs.log_access

    def noting(entry: RequestLog, duration_s: float) -> None:
        entries.append(entry)
        real(entry, duration_s)

    monkeypatch.setattr(observer_module, "log_access", noting)
    async with served_app(fresh_database_url) as (_, api, sent):
        owner, proj, _ = await _world(api)
        await api.ok("{ viewer { id } }", {}, owner.token)
        no_label = to_global_id("Label", uuid.uuid4())  # well formed: the write is refused
        for given, expected in (
            ({"projectId": proj["id"], "title": "ok"}, None),
            (
                {"projectId": proj["id"], "title": "l", "labelIds": [no_label]},
                "NOT_FOUND",
            ),
        ):
            sent.reset()
            entries.clear()
            body = await api.post(LEAN, {"input": given}, owner.token)
            queries = [q for q in sent.reset() if q not in _transaction_control([q])]
            codes = [e["code"] for e in body["data"]["createTask"]["userErrors"]]
            assert codes == ([] if expected is None else [expected])
            assert queries and queries[0].startswith("WITH counter"), queries
            [entry] = entries
            assert entry.sql_statements == len(queries), (entry, queries)


async def test_a_backend_killed_under_the_write_answers_json_and_the_pool_recovers(
    fresh_database_url: str,
) -> None:
    dsn = asyncpg_dsn(fresh_database_url)
    async with served_app(fresh_database_url, pool_size=1) as (app, api, _sent):
        owner, proj, labels = await _world(api)
        await api.ok("{ viewer { id } }", {}, owner.token)
        locker, locked = await _project_locked(dsn, proj["id"])
        try:
            request = asyncio.create_task(
                _timed_post(
                    api,
                    LEAN,
                    {"input": {"projectId": proj["id"], "title": "k", "labelIds": labels}},
                    owner.token,
                )
            )
            pid = await _waiting_on_a_lock(dsn)
            await locker.execute("SELECT pg_terminate_backend($1)", pid)
            _, body = await asyncio.wait_for(request, 10)
        finally:
            await locked.commit()
            await locker.close()
        [error] = body["errors"]
        assert error["extensions"]["code"] == "UNAVAILABLE", body
        assert (
            isinstance(error["extensions"]["requestId"], str) and error["extensions"]["requestId"]
        )
        assert body["_status"] == 503
        await asyncio.sleep(0.3)
        assert await written(dsn) == (0, 0, 0, 0, 0)
        # The pool's one connection is replaced; reads and writes go on.
        await api.ok(FAST_READ, {}, owner.token)
        made = await api.ok(
            LEAN, {"input": {"projectId": proj["id"], "title": "after"}}, owner.token
        )
        assert made["createTask"]["task"]["number"] == 1
        # Idle pool connections ended by the server are not used for the next write.
        await locker_kill_pool(dsn)
        await asyncio.sleep(0.2)
        made = await api.ok(
            LEAN, {"input": {"projectId": proj["id"], "title": "again"}}, owner.token
        )
        assert made["createTask"]["task"]["number"] == 2
        assert app.state.database.read_pool.get_size() <= 1
    assert await written(dsn) == (2, 2, 0, 2, 2)


async def locker_kill_pool(dsn: str) -> None:
    """Ends this database's single-statement pool's idle backends (the app's read pool)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname ="
            " current_database() AND application_name = 'graphql-api-read' AND state = 'idle'"
        )
    finally:
        await conn.close()


async def test_the_rows_written_agree_with_each_other_and_with_the_request(
    fresh_database_url: str,
) -> None:
    """The task, its labels and its audit row carry the project's workspace (filled in by the
    statement, not given), the creator, the number in the audit's changes, and the request's id.
    Every request id the server accepts (a client's X-Request-ID, up to 128 characters) fits
    the audit row (varchar(64) before migration 0007: INTERNAL with 65 to 128)."""
    dsn = asyncpg_dsn(fresh_database_url)
    async with served_app(fresh_database_url) as (_, api, _sent):
        owner, proj, labels = await _world(api)
        ws_id = await _workspace_of(api, owner, proj["id"])
        request_ids = ["short-id", "r" * 64, "x" * 100]
        answers = []
        for i, request_id in enumerate(request_ids):
            response = await api.http.post(
                "/graphql",
                json={
                    "query": LEAN,
                    "variables": {
                        "input": {"projectId": proj["id"], "title": f"t{i}", "labelIds": labels}
                    },
                },
                headers={"authorization": f"Bearer {owner.token}", "x-request-id": request_id},
            )
            assert response.headers["x-request-id"] == request_id
            answers.append(response.json())
    for request_id, body in zip(request_ids, answers, strict=True):
        assert "errors" not in body, (len(request_id), body)
        task = body["data"]["createTask"]["task"]
        conn = await asyncpg.connect(dsn)
        try:
            row = await conn.fetchrow(
                """SELECT t.workspace_id, t.created_by_id, t.number,
                     (SELECT array_agg(DISTINCT workspace_id) FROM task_labels
                      WHERE task_id = t.id) AS label_ws,
                     a.workspace_id AS audit_ws, a.actor_id, a.request_id,
                     a.changes -> 'number' AS number_change
                   FROM tasks t JOIN audit_events a ON a.entity_id = t.id
                   WHERE t.id = $1 AND a.action = 'task.create'""",
                _uuid(task["id"]),
            )
        finally:
            await conn.close()
        assert row is not None
        workspace = _uuid(ws_id)
        assert row["workspace_id"] == workspace and row["audit_ws"] == workspace
        assert row["label_ws"] == [workspace]
        assert row["created_by_id"] == _uuid(owner.id) == row["actor_id"]
        assert orjson.loads(row["number_change"]) == [None, task["number"]]
        assert row["request_id"] == request_id


# --- odd inputs ------------------------------------------------------------------------------


async def test_odd_inputs_are_stored_as_given_or_refused_as_input(fresh_database_url: str) -> None:
    dsn = asyncpg_dsn(fresh_database_url)
    async with served_app(fresh_database_url) as (_, api, sent):
        owner, proj, _ = await _world(api)
        ws_id = await _workspace_of(api, owner, proj["id"])
        many = [(await label(api, owner, ws_id, f"l{i}"))["id"] for i in range(21)]
        title = "Ünïcødé 🚀 שלום \U0001d518 e\u0301 ' \" \\ $1 %s ;--"
        sent.reset()
        made = await api.ok(
            CREATE,
            {
                "input": {
                    "projectId": proj["id"],
                    "title": f"  {title}  ",
                    "description": "🙂" * 50_000,
                    "dueAt": "2031-02-03T04:05:06+05:30",
                    "labelIds": many[:20] + many[:5],  # 20 distinct, repeated ids
                }
            },
            owner.token,
        )
        assert _transaction_control(sent.reset()) == []
        task = made["createTask"]["task"]
        assert task["title"] == title and task["description"] == "🙂" * 50_000
        assert datetime.fromisoformat(task["dueAt"]) == datetime.fromisoformat(
            "2031-02-03T04:05:06+05:30"
        )
        read = await api.ok(LABELS_OF, {"id": task["id"]}, owner.token)
        assert {x["id"] for x in read["node"]["labels"]} == set(many[:20])
        emoji_title = await api.ok(
            LEAN, {"input": {"projectId": proj["id"], "title": "🚀" * 200}}, owner.token
        )
        assert emoji_title["createTask"]["task"]["number"] == 2
        refused: dict[str, tuple[dict[str, Any], tuple[str, list[str]]]] = {
            "21 labels": (
                {"title": "t", "labelIds": many},
                ("INVALID_INPUT", ["input", "labelIds"]),
            ),
            "201 characters": ({"title": "🚀" * 201}, ("INVALID_INPUT", ["input", "title"])),
            "blank": ({"title": " \t\n "}, ("INVALID_INPUT", ["input", "title"])),
        }
        for name, (given, expected) in refused.items():
            body = await api.post(
                CREATE, {"input": {"projectId": proj["id"], **given}}, owner.token
            )
            assert _errors(body["data"]) == [expected], (name, body)
        for given in ({"title": "nul\x00"}, {"title": "t", "description": "d\x00"}):
            body = await api.post(
                CREATE, {"input": {"projectId": proj["id"], **given}}, owner.token
            )
            codes = error_codes(body) or [
                e["code"] for e in body["data"]["createTask"]["userErrors"]
            ]
            assert codes and set(codes) <= {"INVALID_INPUT", "BAD_REQUEST"}, body
    assert await written(dsn) == (2, 2, 20, 2, 2)


# --- in a transaction --------------------------------------------------------------------------


async def test_creates_in_a_transaction_roll_back_whole_and_an_idempotent_retry_takes_no_number(
    fresh_database_url: str,
) -> None:
    """Two creates in one operation, the second refused with a userError: the first stays. Two
    creates, the second's field fails at the top level (a forbidden read in its payload): both
    roll back, no NOTIFY, no number. An Idempotency-Key sent twice: one task, one number."""
    dsn = asyncpg_dsn(fresh_database_url)
    two = """mutation($a: CreateTaskInput!, $b: CreateTaskInput!) {
      a: createTask(input: $a) { task { number } userErrors { code } }
      b: createTask(input: $b) { task { number project { workspace {
        auditEvents(first: 1) { nodes { id } } } } } userErrors { code } } }"""
    async with served_app(fresh_database_url) as (_, api, sent):
        owner, proj, _ = await _world(api)
        ws_id = await _workspace_of(api, owner, proj["id"])
        member = await api.register("member")
        await api.add(owner, ws_id, member, "MEMBER")
        listener, heard = await _listening(dsn)
        sent.reset()
        body = await api.post(
            two,
            {
                "a": {"projectId": proj["id"], "title": "a"},
                "b": {"projectId": proj["id"], "title": ""},
            },
            member.token,
        )
        assert body["data"]["a"]["task"] == {"number": 1}, body
        assert [e["code"] for e in body["data"]["b"]["userErrors"]] == ["INVALID_INPUT"]
        control = [q.split()[0].rstrip(";").upper() for q in _transaction_control(sent.reset())]
        assert "BEGIN" in control and control[-1] == "COMMIT", control
        body = await api.post(
            two,
            {
                "a": {"projectId": proj["id"], "title": "a"},
                "b": {"projectId": proj["id"], "title": "b"},
            },
            member.token,
        )
        assert error_codes(body) == ["FORBIDDEN"], body
        control = [q.split()[0].rstrip(";").upper() for q in _transaction_control(sent.reset())]
        assert "BEGIN" in control and control[-1] == "ROLLBACK", control
        await asyncio.sleep(0.3)
        assert len(heard) == 1
        assert await _counter(dsn, proj["id"]) == 1
        answers = []
        for _ in range(2):
            response = await api.http.post(
                "/graphql",
                json={
                    "query": LEAN,
                    "variables": {"input": {"projectId": proj["id"], "title": "k"}},
                },
                headers={"authorization": f"Bearer {member.token}", "idempotency-key": "same-key"},
            )
            answers.append(response.json())
        assert answers[0] == answers[1] and answers[0]["data"]["createTask"]["task"]["number"] == 2
        await asyncio.sleep(0.3)
        await listener.close()
    assert len(heard) == 2
    assert await written(dsn) == (2, 2, 0, 2, 2)
