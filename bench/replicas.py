"""The fast path's requests/s reading from a streaming replica against reading from the primary,
in one run: `python -m bench.replicas`. Builds a private primary and a `pg_basebackup -R` standby
(tests/replication.py), seeds a smaller copy of the benchmark's data set into the primary, starts
two servers as `make bench` does (one with DATABASE_READ_URL pointing at the standby, one
without) and drives Q1 and Q2 at each with wrk in alternating rounds. Both PostgreSQL servers
and both app servers share this machine's cores: this measures what routing costs or saves per
request, not what a replica on a machine of its own adds."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
from statistics import median

import asyncpg
import httpx

from bench import wrk
from bench.run import ensure_data, operations, register, sign_in, start_server, wait_up
from db.migrations import upgrade
from db.urls import asyncpg_dsn
from tests.databases import with_database
from tests.replication import streaming_replica


async def prepare(primary_admin: str, standby_admin: str, tasks: int) -> tuple[str, str, dict]:  # type: ignore[type-arg]
    conn = await asyncpg.connect(asyncpg_dsn(primary_admin))
    try:
        await conn.execute("CREATE DATABASE bench")
    finally:
        await conn.close()
    primary = with_database(primary_admin, "bench")
    await upgrade(primary)
    data = await ensure_data(primary, tasks)
    return primary, with_database(standby_admin, "bench"), data


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.replicas", description=__doc__)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with streaming_replica() as replication:
        primary, standby, data = asyncio.run(
            prepare(replication.primary.url, replication.standby.url, args.tasks)
        )
        ops = {k: v for k, v in operations(data).items() if k.startswith(("Q1", "Q2"))}
        os.environ.setdefault("BENCH_SECRET", secrets.token_urlsafe(48))
        servers = {
            "primary": start_server(primary, args.workers),
            "replica": start_server(primary, args.workers, {"DATABASE_READ_URL": standby}),
        }
        try:
            for url, proc in servers.values():
                wait_up(url.replace("/graphql", "/readyz"), proc)
            token = sign_in(servers["primary"][0])
            register(servers["primary"][0], token, ops)  # by-hash variants (one store for all)
            for name, body in ops.items():
                answers = {
                    label: httpx.post(
                        u, json=body, headers={"authorization": f"Bearer {token}"}
                    ).json()
                    for label, (u, _) in servers.items()
                }
                assert answers["primary"] == answers["replica"], name
                rps: dict[str, list[float]] = {"primary": [], "replica": []}
                p99: dict[str, list[float]] = {"primary": [], "replica": []}
                for _ in range(args.rounds):
                    for label, (u, _) in servers.items():
                        wrk.run(u, body, token, seconds=1, connections=args.connections)
                        r = wrk.run(
                            u, body, token, seconds=args.seconds, connections=args.connections
                        )
                        assert r.errors == 0, (label, r)
                        rps[label].append(r.rps)
                        p99[label].append(r.p99_ms)
                print(
                    f"{name}: primary {median(rps['primary']):.0f} req/s (p99 "
                    f"{median(p99['primary']):.1f} ms), replica {median(rps['replica']):.0f} req/s "
                    f"(p99 {median(p99['replica']):.1f} ms); rounds {rps}",
                    flush=True,
                )
            activity = asyncio.run(_standby_reads(standby))
            print(f"standby backends of the replica server: {activity}")
        finally:
            for _, proc in servers.values():
                proc.terminate()
                proc.wait(timeout=30)
    return 0


async def _standby_reads(standby: str) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(standby))
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'graphql-api-read-replica'"
        )
        return count
    finally:
        await conn.close()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", os.getcwd())
    raise SystemExit(main())
