"""`make bench BENCH_ARGS="--sides direct,pgbouncer,replica --only Q1,Q2"`: the fast path's
requests/s with the server on PostgreSQL directly, through PgBouncer (transaction mode) and reading
from a streaming replica, side by side in one run. One data set in a private primary with a
`pg_basebackup -R` standby (tests/replication.py), seeded as `make bench` seeds; a server per side
(`--workers` each, production mode, the rate limit raised); the same answer from each; then per
operation wrk rounds against the sides in rotating order, so all meet the same moments of a shared
machine. The primary, the standby, PgBouncer, the three servers and wrk share this machine's
cores: the ratios within a run are what it measures."""

from __future__ import annotations

import argparse
import asyncio
import subprocess
from contextlib import ExitStack
from datetime import UTC, datetime
from statistics import median
from typing import Any

import httpx
import orjson

from bench.pgbouncer import pgbouncer
from bench.replicas import _standby_reads, prepare
from bench.run import (
    RESULTS,
    alternate,
    operations,
    register,
    sign_in,
    start_server,
    summary,
    through_pgbouncer,
    wait_up,
)
from tests.replication import replayed, streaming_replica

SIDES = ("direct", "pgbouncer", "replica")


def bench_sides(args: argparse.Namespace) -> int:
    sides = args.sides.split(",")
    unknown = set(sides) - set(SIDES)
    if unknown or len(set(sides)) != len(sides):
        raise SystemExit(f"--sides takes each of {', '.join(SIDES)} at most once, not {args.sides}")
    servers: dict[str, tuple[str, subprocess.Popen[bytes]]] = {}
    with streaming_replica() as replication, ExitStack() as stack:
        print(f"seeding {args.tasks} tasks into a private primary with a standby ...", flush=True)
        primary, standby, data = asyncio.run(
            prepare(replication.primary.url, replication.standby.url, args.tasks)
        )
        asyncio.run(replayed(primary, standby, seconds=600))
        ops = operations(data)
        if args.only:
            ops = {k: v for k, v in ops.items() if k.startswith(tuple(args.only.split(",")))}
        try:
            for side in sides:
                servers[side] = start_side(side, primary, standby, args.workers, stack)
            for url, proc in servers.values():
                wait_up(url.replace("/graphql", "/readyz"), proc)
            token = sign_in(servers[sides[0]][0])
            register(servers[sides[0]][0], token, ops)  # by-hash variants (one store for all)
            results = {
                name: measure_sides(body, servers, token, args) for name, body in ops.items()
            }
            standby_backends = asyncio.run(_standby_reads(standby)) if "replica" in sides else None
        finally:
            for _, proc in servers.values():
                proc.terminate()
                proc.wait(timeout=30)
    write_sides(
        {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "settings": vars(args) | {"tasks_in_database": data["tasks"]},
            "sides": sides,
            "operations": results,
            "standby_backends": standby_backends,
        }
    )
    return 0


def start_side(
    side: str, primary: str, standby: str, workers: int, stack: ExitStack
) -> tuple[str, subprocess.Popen[bytes]]:
    if side == "pgbouncer":
        # Server connections for all the workers' pools may ask for (as `--pgbouncer` gives).
        bouncer = stack.enter_context(pgbouncer(primary, pool_size=workers * 24))
        url, env = through_pgbouncer(bouncer, primary)
        return start_server(url, workers, env)
    if side == "replica":
        return start_server(primary, workers, {"DATABASE_READ_URL": standby})
    return start_server(primary, workers)


def measure_sides(
    body: dict[str, Any],
    servers: dict[str, tuple[str, subprocess.Popen[bytes]]],
    token: str,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """The same `data` from every side (the first request also compiles each server's plan), then
    the rounds; each side's figures are medians, its ratios the medians of the rounds' own ratios
    to the first side's."""
    answers = {
        side: httpx.post(url, json=body, headers={"authorization": f"Bearer {token}"}).json()
        for side, (url, _) in servers.items()
    }
    first, *others = servers
    assert "errors" not in answers[first], answers[first]
    for side in others:
        assert answers[side].get("data") == answers[first]["data"], (side, answers[side])
    runs = alternate(
        {side: (url, token) for side, (url, _) in servers.items()},
        body,
        args.rounds,
        args.seconds,
        args.connections,
        rotate=True,
    )
    row: dict[str, Any] = {}
    for side, results in runs.items():
        pairs = list(zip(results, runs[first], strict=True))
        row[side] = summary(results) | {
            "rps_ratio": median(r.rps / b.rps for r, b in pairs),
            "p50_ratio": median(r.p50_ms / max(b.p50_ms, 0.001) for r, b in pairs),
            "p99_ratio": median(r.p99_ms / max(b.p99_ms, 0.001) for r, b in pairs),
        }
    print(
        "; ".join(
            f"{side} {s['rps']:.0f} req/s ({s['rps_ratio']:.0%}), p50 {s['p50_ms']:.1f} ms"
            for side, s in row.items()
        ),
        flush=True,
    )
    return row


def write_sides(report: dict[str, Any]) -> None:
    settings, first = report["settings"], report["sides"][0]
    lines = [
        f"# Sides {report['at']}",
        "",
        f"{settings['workers']} workers per server, {settings['connections']} connections, "
        f"{settings['rounds']} rounds of {settings['seconds']} s per operation and side in "
        f"rotating order (medians; each ratio the median of the rounds' ratios to {first}), "
        f"{settings['tasks_in_database']} tasks in the database.",
        "",
        f"| operation | side | req/s | vs {first} | p50 ms | vs {first} | p99 ms | vs {first} "
        "| rounds req/s | errors |",
        "| --- | --- |" + " ---: |" * 8,
    ]
    for name, row in report["operations"].items():
        for side, s in row.items():
            rounds = ", ".join(f"{r['rps']:.0f}" for r in s["rounds"])
            lines.append(
                f"| {name} | {side} | {s['rps']:.0f} | {s['rps_ratio']:.0%} | {s['p50_ms']:.2f} | "
                f"{s['p50_ratio']:.2f} | {s['p99_ms']:.2f} | {s['p99_ratio']:.2f} | {rounds} | "
                f"{s['errors']} |"
            )
    if report["standby_backends"] is not None:
        lines += [
            "",
            f"Backends of the replica server on the standby: {report['standby_backends']}.",
        ]
    stamp = report["at"].replace(":", "").replace("-", "")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stamp}-sides.md").write_text("\n".join(lines) + "\n")
    (RESULTS / f"{stamp}-sides.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    print("\n".join(lines))
