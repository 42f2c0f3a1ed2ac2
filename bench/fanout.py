"""`python -m bench.fanout`: live-update fan-out under load.

Starts `graphql-api serve` as users run it (embedded PostgreSQL unless DATABASE_URL is set),
opens N graphql-transport-ws subscribers on one workspace (a mix of ADMIN, MEMBER and VIEWER
users, so both task-visibility groups are exercised) in `--client-processes` processes of their
own (bench/fanout_clients.py), then sends task events at a fixed rate for a while, directly in
SQL with `pg_notify` of the very payload a task mutation sends (for UPDATED events of existing
tasks), and reports: events sent, events received per subscriber (min/median; only events sent
after the start count, and each subscriber checks that they arrive in order), overflows,
delivery latency p50/p99 (from the payload's `at` to the client's receipt), the server's CPU,
the benchmark's own and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import time
import uuid
from pathlib import Path
from statistics import median
from typing import Any

import asyncpg
import httpx
import orjson
import psutil

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


async def start_clients(
    host: str, workspace: str, tokens: list[str], processes: int, deadline_s: float
) -> list[asyncio.subprocess.Process]:
    """bench.fanout_clients processes, the subscribers dealt out among them."""
    clients = []
    for n in range(processes):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.fanout_clients",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 24,  # the report's latency sample is one line
        )
        config = {
            "host": host,
            "query": SUBSCRIPTION,
            "workspace": workspace,
            "tokens": tokens[n::processes],
            "deadline_s": deadline_s,
        }
        tell(proc, config)
        clients.append(proc)
    return clients


def tell(proc: asyncio.subprocess.Process, message: dict[str, Any]) -> None:
    assert proc.stdin is not None
    proc.stdin.write(orjson.dumps(message) + b"\n")


async def hear(proc: asyncio.subprocess.Process) -> Any:
    assert proc.stdout is not None
    line = await proc.stdout.readline()
    assert line, "a client process ended"
    return orjson.loads(line)


def cpu_seconds(procs: list[psutil.Process]) -> float:
    return sum(sum(p.cpu_times()[:2]) for p in procs)


async def run(
    url: str, host: str, server: subprocess.Popen[bytes], args: argparse.Namespace
) -> None:
    users = max(1, (args.subscribers + 9) // 10)
    data = await prepare(f"http://{host}", users, args.tasks)
    async with httpx.AsyncClient(base_url=f"http://{host}") as http:
        me = await gql(http, "{ viewer { id } }", {}, data["tokens"][0])
    actor = str(from_global_id(me["viewer"]["id"])[1])  # type: ignore[index]
    tokens = [data["tokens"][n % users] for n in range(args.subscribers)]
    deadline_s = args.seconds + 10  # drain: 10 s after the last event is sent
    clients = await start_clients(
        host, data["workspace"], tokens, args.client_processes, deadline_s
    )
    # Every subscription is live once each has received one event.
    conn = await asyncpg.connect(asyncpg_dsn(url))
    ws_id = from_global_id(data["workspace"])[1]  # type: ignore[index]
    row = await conn.fetchrow(
        "SELECT id, project_id FROM tasks WHERE workspace_id = $1 LIMIT 1", ws_id
    )
    warm = Task(id=row["id"], workspace_id=ws_id, project_id=row["project_id"])
    ready = asyncio.gather(*(hear(c) for c in clients))
    for _ in range(600):
        if ready.done():
            break
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload("UPDATED", warm, None))
        await asyncio.wait([ready], timeout=0.05)
    await ready
    await conn.close()
    proc = psutil.Process(server.pid)
    procs = [proc, *proc.children(recursive=True)]
    client_procs = [psutil.Process(c.pid) for c in clients]
    cpu_before, clients_before = cpu_seconds(procs), cpu_seconds(client_procs)
    me_before = sum(psutil.Process().cpu_times()[:2])
    started = time.time()
    print(f"sending {args.rate} events/s for {args.seconds:.0f} s", flush=True)
    for c in clients:
        tell(c, {"start": started})
    sent = await send_events(url, data["workspace"], data["tasks"], args.rate, args.seconds, actor)
    for c in clients:
        tell(c, {"sent": sent})
    reports = await asyncio.gather(*(hear(c) for c in clients))
    elapsed = max(r["finished"] for r in reports) - started
    cpu = cpu_seconds(procs) - cpu_before
    clients_cpu = cpu_seconds(client_procs) - clients_before
    me_cpu = sum(psutil.Process().cpu_times()[:2]) - me_before
    for c in clients:
        await c.wait()
    got = [n for r in reports for n in r["received"]]
    latencies = sorted(x for r in reports for x in r["latencies"])
    print(f"subscribers:            {len(got)} ({users} users: ADMIN/MEMBER/VIEWER)")
    print(f"events sent:            {sent} at {args.rate}/s for {args.seconds:.0f} s")
    print(f"received per subscriber: min {min(got)}, median {median(got):.0f}, max {max(got)}")
    print(f"complete (all events):  {sum(g >= sent for g in got)} of {len(got)}")
    print(f"out of order:           {sum(r['out_of_order'] for r in reports)}")
    print(f"overflows:              {sum(r['overflowed'] for r in reports)}")
    print(f"other errors:           {sum(r['other_errors'] for r in reports)}")
    print(
        f"latency p50 / p99:      {percentile(latencies, 0.5) * 1000:.0f} / "
        f"{percentile(latencies, 0.99) * 1000:.0f} ms"
    )
    print(
        f"server CPU:             {cpu:.1f} s in {elapsed:.1f} s ({cpu / elapsed:.0%} of one core)"
    )
    print(
        f"bench CPU:              clients {clients_cpu:.1f} s ({args.client_processes} "
        f"processes), sender {me_cpu:.1f} s"
    )
    print(f"load average:           {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.fanout", description=__doc__)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--rate", type=int, default=500, help="events per second (500)")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--tasks", type=int, default=20, help="tasks the events are about (20)")
    parser.add_argument("--workers", type=int, default=1, help="server processes (1)")
    parser.add_argument(
        "--client-processes", type=int, default=1, help="processes the subscribers run in (1)"
    )
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
