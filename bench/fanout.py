"""`python -m bench.fanout`: live-update fan-out under load.

Starts `graphql-api serve` as users run it (embedded PostgreSQL unless DATABASE_URL is set),
opens N graphql-transport-ws subscribers on one workspace (a mix of ADMIN, MEMBER and VIEWER
users, so both task-visibility groups are exercised), then sends task events at a fixed rate
for a while, directly in SQL with `pg_notify` of the very payload a task mutation sends (for
UPDATED events of existing tasks), and reports: events sent, events received per subscriber
(min/median), overflows, delivery latency p50/p99 (from the payload's `at` to the client's
receipt) and the server's CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

import asyncpg
import httpx
import orjson
import psutil
from websockets.asyncio.client import ClientConnection, connect

from bench.run import start_server, wait_up
from db.embedded import EmbeddedPostgres, default_data_dir
from db.migrations import run_sync
from db.models import Task
from db.urls import asyncpg_dsn
from graphql_api.events.publish import CHANNEL, payload
from graphql_api.schema.relay import from_global_id

SUBSCRIPTION = """subscription($w: ID!) {
  taskEvents(workspaceId: $w) { kind taskId at actor { displayName } task { identifier title status } }
}"""
REGISTER = """mutation($i: RegisterInput!) { register(input: $i) { accessToken user { id } } }"""
WORKSPACE = (
    """mutation($i: CreateWorkspaceInput!) { createWorkspace(input: $i) { workspace { id } } }"""
)
ADD = """mutation($i: AddMemberInput!) { addMember(input: $i) { userErrors { code } } }"""
PROJECT = """mutation($i: CreateProjectInput!) { createProject(input: $i) { project { id } } }"""
TASK = """mutation($i: CreateTaskInput!) { createTask(input: $i) { task { id } } }"""
ROLES = ("ADMIN", "MEMBER", "VIEWER")


@dataclass
class Subscriber:
    received: int = 0
    overflowed: bool = False
    other_errors: list[Any] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    done: bool = False


async def gql(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str = ""
) -> Any:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    r = await http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    body = r.json()
    assert "errors" not in body, body
    return body["data"]


async def prepare(base: str, users: int, tasks: int) -> dict[str, Any]:
    """A workspace with an owner, `users` members of mixed roles and `tasks` tasks."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        tag = secrets.token_hex(4)

        async def register(name: str) -> tuple[str, str]:
            data = await gql(
                http,
                REGISTER,
                {
                    "i": {
                        "email": f"{name}-{tag}@bench.test",
                        "password": "fan-out bench 1",
                        "displayName": name,
                    }
                },
            )
            return data["register"]["accessToken"], f"{name}-{tag}@bench.test"

        owner, _ = await register("owner")
        ws = (await gql(http, WORKSPACE, {"i": {"name": f"Fan-out {tag}"}}, owner))[
            "createWorkspace"
        ]["workspace"]["id"]
        tokens = []
        for n in range(users):
            token, email = await register(f"watcher{n}")
            role = ROLES[n % len(ROLES)]
            await gql(http, ADD, {"i": {"workspaceId": ws, "email": email, "role": role}}, owner)
            tokens.append(token)
        proj = (
            await gql(
                http, PROJECT, {"i": {"workspaceId": ws, "key": "FAN", "name": "Fan-out"}}, owner
            )
        )["createProject"]["project"]["id"]
        task_ids = []
        for n in range(tasks):
            data = await gql(http, TASK, {"i": {"projectId": proj, "title": f"Task {n}"}}, owner)
            task_ids.append(data["createTask"]["task"]["id"])
    return {"workspace": ws, "tokens": tokens, "tasks": task_ids}


async def subscribe(
    host: str,
    token: str,
    workspace: str,
    sub: Subscriber,
    ready: asyncio.Event,
    stop: asyncio.Event,
) -> None:
    async with connect(
        f"ws://{host}/graphql", subprotocols=["graphql-transport-ws"], max_queue=None
    ) as ws:  # type: ignore[list-item]
        await ws.send(
            orjson.dumps(
                {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
            ).decode()
        )
        ack = orjson.loads(await ws.recv())
        assert ack["type"] == "connection_ack", ack
        await ws.send(
            orjson.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": SUBSCRIPTION, "variables": {"w": workspace}},
                }
            ).decode()
        )
        ready.set()
        await _consume(ws, sub, stop)


async def _consume(ws: ClientConnection, sub: Subscriber, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            raw = await asyncio.wait_for(ws.recv(), 1)
        except TimeoutError:
            continue
        now = time.time()
        message = orjson.loads(raw)
        kind = message["type"]
        if kind == "ping":
            await ws.send('{"type":"pong"}')
        elif kind == "next":
            errors = message["payload"].get("errors")
            if errors:
                if errors[0].get("extensions", {}).get("code") == "SUBSCRIPTION_OVERFLOW":
                    sub.overflowed = True
                else:
                    sub.other_errors.append(errors)
                continue
            event = message["payload"]["data"]["taskEvents"]
            sub.received += 1
            at = event["at"]
            sub.latencies.append(now - _epoch(at))
        elif kind == "complete":
            sub.done = True
            return


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


async def send_events(
    url: str, workspace: str, tasks: list[str], rate: int, seconds: float, actor: str | None
) -> int:
    """pg_notify the payload publish.payload() builds, `rate` per second, one per transaction."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    ws_id = from_global_id(workspace)[1]  # type: ignore[index]
    rows = await conn.fetch("SELECT id, project_id FROM tasks WHERE workspace_id = $1", ws_id)
    models = [Task(id=r["id"], workspace_id=ws_id, project_id=r["project_id"]) for r in rows]
    assert len(models) == len(tasks)
    actor_id = uuid.UUID(actor) if actor else None
    sent = 0
    start = time.monotonic()
    try:
        total = int(rate * seconds)
        while sent < total:
            due = int((time.monotonic() - start) * rate) + 1
            while sent < min(due, total):
                body = payload("UPDATED", models[sent % len(models)], actor_id)
                await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, body)
                sent += 1
            await asyncio.sleep(0.002)
    finally:
        await conn.close()
    return sent


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


async def run(
    url: str, host: str, server: subprocess.Popen[bytes], args: argparse.Namespace
) -> None:
    users = max(1, (args.subscribers + 9) // 10)
    data = await prepare(f"http://{host}", users, args.tasks)
    async with httpx.AsyncClient(base_url=f"http://{host}") as http:
        me = await gql(http, "{ viewer { id } }", {}, data["tokens"][0])
    actor = str(from_global_id(me["viewer"]["id"])[1])  # type: ignore[index]
    subs = [Subscriber() for _ in range(args.subscribers)]
    stop = asyncio.Event()
    readies = [asyncio.Event() for _ in subs]
    clients = [
        asyncio.create_task(
            subscribe(host, data["tokens"][n % users], data["workspace"], s, r, stop)
        )
        for n, (s, r) in enumerate(zip(subs, readies, strict=True))
    ]
    await asyncio.gather(*(r.wait() for r in readies))
    # Every subscription is live once each has received one event.
    conn = await asyncpg.connect(asyncpg_dsn(url))
    ws_id = from_global_id(data["workspace"])[1]  # type: ignore[index]
    row = await conn.fetchrow(
        "SELECT id, project_id FROM tasks WHERE workspace_id = $1 LIMIT 1", ws_id
    )
    warm = Task(id=row["id"], workspace_id=ws_id, project_id=row["project_id"])
    for _ in range(600):
        if all(s.received for s in subs):
            break
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload("UPDATED", warm, None))
        await asyncio.sleep(0.05)
    await conn.close()
    base = [s.received for s in subs]
    for s in subs:
        s.latencies.clear()
    proc = psutil.Process(server.pid)
    procs = [proc, *proc.children(recursive=True)]
    cpu_before = sum(sum(p.cpu_times()[:2]) for p in procs)
    me_before = sum(psutil.Process().cpu_times()[:2])
    started = time.monotonic()

    async def progress() -> None:
        while True:
            await asyncio.sleep(1)
            print(
                "progress",
                sum(s.received for s in subs),
                sum(s.overflowed for s in subs),
                flush=True,
            )

    reporter = asyncio.create_task(progress()) if os.environ.get("FANOUT_PROGRESS") else None
    sent = await send_events(url, data["workspace"], data["tasks"], args.rate, args.seconds, actor)
    # Drain: wait until every subscriber has all the events, has overflowed, or 10 s pass.
    for _ in range(200):
        if all(s.overflowed or s.received - b >= sent for s, b in zip(subs, base, strict=True)):
            break
        await asyncio.sleep(0.05)
    elapsed = time.monotonic() - started
    if reporter is not None:
        reporter.cancel()
    cpu = sum(sum(p.cpu_times()[:2]) for p in procs) - cpu_before
    me_cpu = sum(psutil.Process().cpu_times()[:2]) - me_before
    stop.set()
    await asyncio.gather(*clients, return_exceptions=True)
    got = [s.received - b for s, b in zip(subs, base, strict=True)]
    latencies = [x for s in subs for x in s.latencies]
    print(f"subscribers:            {len(subs)} ({users} users: ADMIN/MEMBER/VIEWER)")
    print(f"events sent:            {sent} at {args.rate}/s for {args.seconds:.0f} s")
    print(f"received per subscriber: min {min(got)}, median {median(got):.0f}, max {max(got)}")
    print(f"complete (all events):  {sum(g >= sent for g in got)} of {len(subs)}")
    print(f"overflows:              {sum(s.overflowed for s in subs)}")
    print(f"other errors:           {sum(len(s.other_errors) for s in subs)}")
    print(
        f"latency p50 / p99:      {percentile(latencies, 0.5) * 1000:.0f} / {percentile(latencies, 0.99) * 1000:.0f} ms"
    )
    print(
        f"server CPU:             {cpu:.1f} s in {elapsed:.1f} s ({cpu / elapsed:.0%} of one core)"
    )
    print(f"bench client CPU:       {me_cpu:.1f} s")


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.fanout", description=__doc__)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--rate", type=int, default=500, help="events per second (500)")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--tasks", type=int, default=20, help="tasks the events are about (20)")
    parser.add_argument("--workers", type=int, default=1, help="server processes (1)")
    args = parser.parse_args()
    os.environ.setdefault("BENCH_SECRET", secrets.token_urlsafe(32))
    embedded = None
    url = os.environ.get("DATABASE_URL")
    if not url:
        embedded = EmbeddedPostgres(
            Path(os.environ.get("BENCH_DATA_DIR", default_data_dir().parent / "fanout-pgdata"))
        )
        url = embedded.start()
    try:
        run_sync(url, "upgrade", "head")
        target, server = start_server(url, args.workers)
        try:
            wait_up(target.replace("/graphql", "/readyz"), server)
            host = target.removeprefix("http://").removesuffix("/graphql")
            asyncio.run(run(url, host, server, args))
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        if embedded:
            embedded.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
