"""`make bench`: seed (or reuse) the data set, start the server as users run it and the limit
endpoint beside it, drive Q1-Q7 and M1 with wrk, and report requests/s, p50/p99, SQL statements
per request, the ratio to the limit endpoint and the memory check, as Markdown and JSON."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any

import asyncpg
import httpx
import orjson
import psutil

from bench import wrk
from bench.audit_trail import ensure_audit_trail
from bench.operations import (
    M1_CREATE,
    Q1_BOARD,
    Q1C_BOARD_COUNTS,
    Q2_TASK,
    Q3_DEEP,
    Q4_HISTORY,
    Q5_AUDIT_LOG,
    Q6_NODES,
    Q7_BOARD_INCLUDE,
    by_hash,
    own_statement,
)
from db.embedded import EmbeddedPostgres, default_data_dir
from db.migrations import run_sync
from db.urls import asyncpg_dsn
from graphql_api.schema.relay import to_global_id
from graphql_api.seed.bulk import BENCH_EMAIL, BENCH_PASSWORD, seed_bulk

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PREFIX = "bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def ensure_data(url: str, tasks: int) -> dict[str, Any]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        if not await conn.fetchval("SELECT 1 FROM workspaces WHERE slug = $1", f"{PREFIX}-1"):
            print(f"seeding {tasks} tasks (10 workspaces x 10 projects) ...", flush=True)
            result = await seed_bulk(url, tasks, 10, 10, PREFIX)
            print(f"  seeded in {result.seconds:.1f} s", flush=True)
        ws = await conn.fetchrow("SELECT id, slug FROM workspaces WHERE slug = $1", f"{PREFIX}-1")
        projects = await conn.fetch(
            "SELECT id FROM projects WHERE workspace_id = $1 ORDER BY created_at, id", ws["id"]
        )
        project, writes = projects[:2]
        task = await conn.fetchrow(
            "SELECT id FROM tasks WHERE project_id = $1 AND assignee_id IS NOT NULL "
            "ORDER BY number LIMIT 1 OFFSET 10",
            project["id"],
        )
        history_task = await conn.fetchval(
            "SELECT id FROM tasks WHERE project_id = $1 AND number = 20", project["id"]
        )
        # Q5 reads another workspace's log than the one M1 writes into, so it reads the same
        # rows from run to run.
        log_ws = await conn.fetchrow(
            "SELECT id, slug FROM workspaces WHERE slug = $1", f"{PREFIX}-2"
        )
        await ensure_audit_trail(conn, history_task, log_ws["id"])
        # Q6: a task from each of eight projects and the other two projects, interleaved.
        picked = [
            to_global_id("Task", await _task_numbered(conn, p["id"], 100)) for p in projects[:8]
        ]
        picked[2:2] = [to_global_id("Project", projects[8]["id"])]
        picked[7:7] = [to_global_id("Project", projects[9]["id"])]
        labels = await conn.fetch(
            "SELECT id FROM labels WHERE workspace_id = $1 ORDER BY name LIMIT 3", ws["id"]
        )
        actor = await conn.fetchval("SELECT id FROM users WHERE email = $1", BENCH_EMAIL)
        counts = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM tasks) AS tasks, (SELECT count(*) FROM comments) AS comments"
        )
    finally:
        await conn.close()
    return {
        "slug": ws["slug"],
        "project": to_global_id("Project", project["id"]),
        # M1 writes elsewhere, so the projects read stay as seeded from run to run.
        "write_project": to_global_id("Project", writes["id"]),
        "task": to_global_id("Task", task["id"]),
        "history_task": to_global_id("Task", history_task),
        "log_slug": log_ws["slug"],
        "nodes": picked,
        "labels": [to_global_id("Label", r["id"]) for r in labels],
        "actor": str(actor),
        "tasks": counts["tasks"],
        "comments": counts["comments"],
    }


async def _task_numbered(conn: asyncpg.Connection, project: Any, number: int) -> Any:
    return await conn.fetchval(
        "SELECT id FROM tasks WHERE project_id = $1 AND number = $2", project, number
    )


def operations(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    board = {"query": Q1_BOARD, "operationName": "Board", "variables": {"id": data["project"]}}
    task = {"query": Q2_TASK, "operationName": "Task", "variables": {"id": data["task"]}}
    return {
        "Q1 board": board,
        # The same operations by hash (APQ), registered before the measurements (register()).
        "Q1H board by hash": by_hash(board),
        "Q1c board+counts": {
            "query": Q1C_BOARD_COUNTS,
            "operationName": "BoardCounts",
            "variables": {"id": data["project"]},
        },
        "Q2 node(id)": task,
        "Q2H node(id) by hash": by_hash(task),
        "Q3 deep": {"query": Q3_DEEP, "operationName": "Deep", "variables": {"slug": data["slug"]}},
        "Q4 history": {
            "query": Q4_HISTORY,
            "operationName": "History",
            "variables": {"id": data["history_task"]},
        },
        "Q5 audit log": {
            "query": Q5_AUDIT_LOG,
            "operationName": "AuditLog",
            "variables": {"slug": data["log_slug"]},
        },
        "Q6 nodes": {
            "query": Q6_NODES,
            "operationName": "Nodes",
            "variables": {"ids": data["nodes"]},
        },
        "Q7 @include board": {
            "query": Q7_BOARD_INCLUDE,
            "operationName": "BoardInclude",
            "variables": {"id": data["project"], "withLabels": False, "compact": False},
        },
        "M1 createTask": {
            "query": M1_CREATE,
            "operationName": "Create",
            "variables": {
                "input": {
                    "projectId": data["write_project"],
                    "title": "Benchmark task",
                    "labelIds": data["labels"],
                }
            },
        },
    }


def register(server_url: str, token: str, ops: dict[str, dict[str, Any]]) -> None:
    """Registers the documents of the operations sent by hash, as Apollo's link does after its
    first PersistedQueryNotFound: the hash with the document."""
    documents = {Q1_BOARD, Q2_TASK, Q3_DEEP}
    for body in ops.values():
        if "extensions" not in body:
            continue
        sha = body["extensions"]["persistedQuery"]["sha256Hash"]
        query = next(
            d
            for d in documents
            if by_hash({"query": d})["extensions"]["persistedQuery"]["sha256Hash"] == sha
        )
        r = httpx.post(
            server_url, json={**body, "query": query}, headers={"authorization": f"Bearer {token}"}
        )
        assert "errors" not in r.json(), r.text


def start(cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def wait_up(url: str, proc: subprocess.Popen[bytes], body: dict[str, Any] | None = None) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url} exited with {proc.returncode}")
        try:
            r = httpx.post(url, json=body) if body else httpx.get(url)
            if r.status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def workers_rss(proc: subprocess.Popen[bytes]) -> int:
    parent = psutil.Process(proc.pid)
    procs = [parent, *parent.children(recursive=True)]
    return sum(p.memory_info().rss for p in procs if p.is_running())


async def sql_statements(url: str, ops: dict[str, dict[str, Any]], token: str) -> dict[str, int]:
    """Statements per request, counted in-process on the same database with the real app."""
    from sqlalchemy import event

    from graphql_api.app import create_app
    from graphql_api.settings import Settings

    app = create_app(
        Settings(
            database_url=url,
            secret_key=os.environ["BENCH_SECRET"],
            environment="production",
            rate_limit_points=1_000_000_000,
        )
    )
    counts: dict[str, int] = {}
    async with app.router.lifespan_context(app):
        seen: list[str] = []
        database = app.state.database
        event.listen(
            database.engine.sync_engine, "before_cursor_execute", lambda *a: seen.append(a[2])
        )
        read_scalar, fetch = database.read_scalar, database.fetch

        async def counted_read(sql: str, params: tuple[Any, ...]) -> Any:
            seen.append(sql)
            return await read_scalar(sql, params)

        async def counted_fetch(sql: str, *params: Any, **options: Any) -> Any:
            seen.append(sql)
            return await fetch(sql, *params, **options)

        database.read_scalar, database.fetch = counted_read, counted_fetch
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for name, body in ops.items():
                await client.post(
                    "/graphql", json=body, headers={"authorization": f"Bearer {token}"}
                )
                seen.clear()
                r = await client.post(
                    "/graphql", json=body, headers={"authorization": f"Bearer {token}"}
                )
                assert "errors" not in r.json(), r.text
                counts[name] = len([s for s in seen if own_statement(s)])
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    parser.add_argument(
        "--workers", type=int, default=2, help="server and limit workers (default 2)"
    )
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections (16)")
    parser.add_argument(
        "--seconds", type=int, default=4, help="per round, operation and endpoint (4)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="alternating server/limit rounds (5)")
    parser.add_argument(
        "--tasks",
        type=int,
        default=100_000,
        help="data set size (tasks); each size has its own embedded PostgreSQL folder",
    )
    parser.add_argument("--only", help="comma-separated operation prefixes, e.g. Q1,Q2")
    parser.add_argument(
        "--pgbouncer",
        action="store_true",
        help="the server through PgBouncer in transaction mode (started here, Debian's "
        "pgbouncer); the limit endpoint stays direct",
    )
    parser.add_argument(
        "--sizes",
        help="comma-separated data set sizes, e.g. 100000,1000000: the whole run at each (an "
        "embedded PostgreSQL per size, each kept for later runs), then p50 and req/s side by side",
    )
    parser.add_argument(
        "--sides",
        help="comma-separated of direct, pgbouncer, replica: a server per side on one data set in "
        "a private primary with a streaming standby, in rotating rounds, ratios to the first side",
    )
    args = parser.parse_args()
    os.environ.setdefault("BENCH_SECRET", secrets.token_urlsafe(32))
    if args.sides:
        if args.pgbouncer or args.sizes:
            parser.error("--sides makes its own sides: not with --pgbouncer or --sizes")
        from bench.sides import bench_sides

        return bench_sides(args)
    if not args.sizes:
        return 0 if _bench_size(args) else 1
    if os.environ.get("DATABASE_URL"):
        parser.error("--sizes needs the embedded PostgreSQL (one database holds one data set)")
    reports = {}
    for size in [int(n) for n in args.sizes.split(",")]:
        args.tasks = size
        report = _bench_size(args)
        if report is None:
            return 1
        reports[size] = report
    write_size_axis(reports)
    return 0


def data_dir(tasks: int) -> Path:
    """One embedded PostgreSQL per data set size, so every size stays seeded for later runs
    (100,000 tasks keeps the historical folder)."""
    given = os.environ.get("BENCH_DATA_DIR")
    if given:
        return Path(given) if tasks == 100_000 else Path(f"{given}-{tasks}")
    base = default_data_dir().parent / "bench-pgdata"
    return base if tasks == 100_000 else base.with_name(f"bench-pgdata-{tasks}")


def _bench_size(args: argparse.Namespace) -> dict[str, Any] | None:
    embedded = None
    url = os.environ.get("DATABASE_URL")
    if not url:
        embedded = EmbeddedPostgres(data_dir(args.tasks))
        url = embedded.start()
    try:
        run_sync(url, "upgrade", "head")
        return _bench_sync(url, args)
    finally:
        if embedded:
            embedded.stop()


def _bench_sync(url: str, args: argparse.Namespace) -> dict[str, Any] | None:
    if not args.pgbouncer:
        return _bench_server(url, url, {}, args)
    from bench.pgbouncer import pgbouncer

    # Server connections for everything the workers' pools may ask for (10 + 10 + 4 each): the
    # cost measured is PgBouncer's hop, not a queue in front of it.
    with pgbouncer(url, pool_size=args.workers * 24) as bouncer:
        print(f"server through PgBouncer on port {bouncer.port} (transaction mode)", flush=True)
        return _bench_server(url, *through_pgbouncer(bouncer, url), args)


def through_pgbouncer(bouncer: Any, url: str) -> tuple[str, dict[str, str]]:
    """The server's DATABASE_URL through `bouncer` (a bench.pgbouncer.Bouncer) in front of `url`,
    and the environment that keeps migrations and LISTEN on `url` itself."""
    through = bouncer.url(url)
    return through + ("&" if "?" in through else "?") + "pgbouncer=true", {
        "DATABASE_DIRECT_URL": url
    }


def start_server(
    database_url: str, workers: int, env: dict[str, str] | None = None
) -> tuple[str, subprocess.Popen[bytes]]:
    """`graphql-api serve` as users run it (production mode, `workers` processes) on a free port,
    with a rate-limit budget the benchmark cannot exhaust; its GraphQL URL and process."""
    port = free_port()
    proc = start(
        [
            sys.executable,
            "-m",
            "graphql_api",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        {
            "DATABASE_URL": database_url,
            "ENVIRONMENT": "production",
            "SECRET_KEY": os.environ["BENCH_SECRET"],
            "ACCESS_TOKEN_TTL_SECONDS": "7200",
            "LOG_LEVEL": "warning",
            # A budget the benchmark cannot exhaust: it measures throughput, not the limit.
            "RATE_LIMIT_POINTS": "1000000000",
            **(env or {}),  # the caller's settings win (a log level, a read replica, ...)
        },
    )
    return f"http://127.0.0.1:{port}/graphql", proc


def sign_in(url: str) -> str:
    """The benchmark user's access token from the server at `url`."""
    login = httpx.post(
        url,
        json={
            "query": "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { accessToken } }",
            "variables": {"e": BENCH_EMAIL, "p": BENCH_PASSWORD},
        },
    ).json()
    token: str = login["data"]["login"]["accessToken"]
    return token


def _bench_server(
    url: str, server_database_url: str, server_env: dict[str, str], args: argparse.Namespace
) -> dict[str, Any] | None:
    data = asyncio.run(ensure_data(url, args.tasks))
    ops = operations(data)
    if args.only:
        wanted = tuple(args.only.split(","))
        ops = {k: v for k, v in ops.items() if k.startswith(wanted)}
    server_url, server = start_server(server_database_url, args.workers, server_env)
    limit_port = free_port()
    limit = start(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.limit:app",
            "--port",
            str(limit_port),
            "--workers",
            str(args.workers),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--log-level",
            "warning",
        ],
        {"LIMIT_DATABASE_URL": url, "LIMIT_ACTOR": data["actor"], "PYTHONPATH": str(ROOT)},
    )
    limit_url = f"http://127.0.0.1:{limit_port}/graphql"
    try:
        wait_up(server_url.replace("/graphql", "/readyz"), server)
        wait_up(limit_url, limit, ops.get("Q2 node(id)") or next(iter(ops.values())))
        token = sign_in(server_url)
        register(server_url, token, ops)
        agreement = {}
        for name, body in ops.items():
            mine = httpx.post(
                server_url, json=body, headers={"authorization": f"Bearer {token}"}
            ).json()
            theirs = httpx.post(limit_url, json=body).json()
            assert "errors" not in mine, (name, mine)
            # The limit endpoint has no extensions (cost): the data must be the same.
            same = mine.get("data") == theirs.get("data")
            if not same and not name.startswith("M"):
                print(
                    f"WARNING {name}: the limit endpoint answers otherwise:\n  server {mine}\n  limit  {theirs}"
                )
            agreement[name] = same if not name.startswith("M") else "n/a (writes)"
        statements = asyncio.run(sql_statements(url, ops, token))  # counted directly
        results: dict[str, Any] = {}
        for name, body in ops.items():
            row = measure(
                body, server_url, limit_url, token, args.rounds, args.seconds, args.connections
            )
            row["sql_statements"] = statements[name]
            row["same_answer_as_limit"] = agreement[name]
            if row["server"]["errors"] or row["limit"]["errors"]:
                print(
                    f"WARNING {name}: {row['server']['errors']} server / {row['limit']['errors']} limit errors (non-2xx or socket)"
                )
            results[name] = row
            print(
                f"{name}: {row['server']['rps']:.0f} req/s vs limit {row['limit']['rps']:.0f} "
                f"({row['rps_ratio']:.0%}), p99 {row['server']['p99_ms']:.1f} vs {row['limit']['p99_ms']:.1f} ms "
                f"(x{row['p99_ratio']:.2f}), {row['sql_statements']} SQL",
                flush=True,
            )
        memory = memory_check(
            server_url,
            ops.get("Q2 node(id)") or next(iter(ops.values())),
            token,
            server,
            args.connections,
        )
    finally:
        for proc in (server, limit):
            proc.terminate()
            proc.wait(timeout=30)
    report = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "settings": vars(args)
        | {"tasks_in_database": data["tasks"], "comments_in_database": data["comments"]},
        "operations": results,
        "memory": memory,
    }
    write_report(report)
    return report


def measure(
    body: dict[str, Any],
    server_url: str,
    limit_url: str,
    token: str,
    rounds: int,
    seconds: int,
    connections: int,
) -> dict[str, Any]:
    """Server and limit endpoint in alternating rounds, so both meet the same moments of a
    shared, noisy machine; each ratio is the median of the rounds' own ratios."""
    runs = alternate(
        {"server": (server_url, token), "limit": (limit_url, None)},
        body,
        rounds,
        seconds,
        connections,
    )
    pairs = list(zip(runs["server"], runs["limit"], strict=True))
    row: dict[str, Any] = {label: summary(results) for label, results in runs.items()}
    row["rps_ratio"] = median(s.rps / lim.rps for s, lim in pairs)
    row["p99_ratio"] = median(s.p99_ms / max(lim.p99_ms, 0.001) for s, lim in pairs)
    return row


def alternate(
    targets: dict[str, tuple[str, str | None]],
    body: dict[str, Any],
    rounds: int,
    seconds: int,
    connections: int,
    *,
    rotate: bool = False,
) -> dict[str, list[wrk.WrkResult]]:
    """wrk against each target (label: URL, token) in turn, `rounds` times, each run after a
    1-second warm-up; with `rotate` each round starts one target further on, so that no target
    always follows the same one."""
    labels = list(targets)
    runs: dict[str, list[wrk.WrkResult]] = {label: [] for label in labels}
    for n in range(rounds):
        shift = n % len(labels) if rotate else 0
        for label in labels[shift:] + labels[:shift]:
            target, tok = targets[label]
            wrk.run(target, body, tok, seconds=1, connections=connections)  # warm-up
            runs[label].append(wrk.run(target, body, tok, seconds=seconds, connections=connections))
    return runs


def summary(results: list[wrk.WrkResult]) -> dict[str, Any]:
    """Medians of the rounds of one target, their totals, and every round."""
    return {
        "rps": median(r.rps for r in results),
        "p50_ms": median(r.p50_ms for r in results),
        "p99_ms": median(r.p99_ms for r in results),
        "requests": sum(r.requests for r in results),
        "errors": sum(r.errors for r in results),
        "rounds": [asdict(r) for r in results],
    }


def memory_check(
    url: str, body: dict[str, Any], token: str, server: subprocess.Popen[bytes], connections: int
) -> dict[str, Any]:
    """RSS of the server's processes after 1,000 and after 10,000 requests."""
    done = 0
    marks: dict[str, Any] = {}
    for target in (1_000, 10_000):
        while done < target:
            done += wrk.run(url, body, token, seconds=1, connections=connections).requests
        marks[f"rss_after_{target}"] = workers_rss(server)
        marks[f"requests_at_{target}"] = done
    marks["growth"] = marks["rss_after_10000"] / marks["rss_after_1000"] - 1
    print(
        f"memory: {marks['rss_after_1000'] / 2**20:.1f} MiB after {marks['requests_at_1000']} requests, "
        f"{marks['rss_after_10000'] / 2**20:.1f} MiB after {marks['requests_at_10000']} ({marks['growth']:+.1%})"
    )
    return marks


def write_report(report: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = report["at"].replace(":", "").replace("-", "")
    (RESULTS / f"{stamp}.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    lines = [
        f"# Benchmark {report['at']}",
        "",
        f"{report['machine']['cpus']} CPUs, {report['settings']['workers']} workers each, "
        f"{report['settings']['connections']} connections, {report['settings']['rounds']} alternating rounds "
        f"of {report['settings']['seconds']} s per operation and endpoint (medians; each ratio the "
        "median of the rounds' ratios), "
        f"{report['settings']['tasks_in_database']} tasks in the database.",
        "",
        "| operation | req/s | limit req/s | ratio | p50 ms | p99 ms | limit p99 ms | p99 ratio | SQL/request | same answer | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for name, row in report["operations"].items():
        s, lim = row["server"], row["limit"]
        lines.append(
            f"| {name} | {s['rps']:.0f} | {lim['rps']:.0f} | {row['rps_ratio']:.0%} | {s['p50_ms']:.2f} | "
            f"{s['p99_ms']:.2f} | {lim['p99_ms']:.2f} | {row['p99_ratio']:.2f} | {row['sql_statements']} | "
            f"{row['same_answer_as_limit']} | {s['errors']} |"
        )
    m = report["memory"]
    lines += [
        "",
        f"Memory (server processes): {m['rss_after_1000'] / 2**20:.1f} MiB after "
        f"{m['requests_at_1000']} requests, {m['rss_after_10000'] / 2**20:.1f} MiB after "
        f"{m['requests_at_10000']} ({m['growth']:+.1%}).",
    ]
    (RESULTS / f"{stamp}.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "latest.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def write_size_axis(reports: dict[int, dict[str, Any]]) -> None:
    """Each operation at each data set size: p50 and req/s, and the p50 of the largest size
    over the smallest's (the target for the board: at most 1.3)."""
    sizes = sorted(reports)
    names = list(reports[sizes[0]]["operations"])
    head = " | ".join(f"p50 ms @{n:,} | req/s @{n:,}" for n in sizes)
    lines = [
        f"# Data set sizes {reports[sizes[-1]]['at']}",
        "",
        f"| operation | {head} | p50 ratio {sizes[-1]:,} / {sizes[0]:,} |",
        "| --- |" + " ---: |" * (2 * len(sizes) + 1),
    ]
    for name in names:
        rows = [reports[n]["operations"][name]["server"] for n in sizes]
        cells = " | ".join(f"{r['p50_ms']:.2f} | {r['rps']:.0f}" for r in rows)
        ratio = rows[-1]["p50_ms"] / max(rows[0]["p50_ms"], 0.001)
        lines.append(f"| {name} | {cells} | {ratio:.2f} |")
    stamp = reports[sizes[-1]]["at"].replace(":", "").replace("-", "")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stamp}-sizes.md").write_text("\n".join(lines) + "\n")
    (RESULTS / f"{stamp}-sizes.json").write_bytes(
        orjson.dumps({str(n): reports[n] for n in sizes}, option=orjson.OPT_INDENT_2)
    )
    print("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
