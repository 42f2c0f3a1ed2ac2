"""What the task counters cost writes: M1 (createTask with three labels) on one server and one
data set, in alternating rounds with the counter triggers enabled and disabled, so both meet the
same moments of a shared machine. Afterwards the triggers are on and the counters recomputed.

    .venv/bin/python -m bench.counter_cost [--rounds 5] [--seconds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics

import asyncpg

from bench import wrk
from bench.run import data_dir, ensure_data, operations, sign_in, start_server, wait_up
from db.embedded import EmbeddedPostgres
from db.migrations import run_sync
from db.urls import asyncpg_dsn

TRIGGERS = ("insert", "update", "delete")
RECOUNT = """
DELETE FROM project_task_counts;
INSERT INTO project_task_counts (project_id, status, deleted, workspace_id, count)
SELECT project_id, status, deleted_at IS NOT NULL, workspace_id, count(*)
FROM tasks GROUP BY project_id, status, deleted_at IS NOT NULL, workspace_id;
"""


async def triggers(url: str, enabled: bool, recount: bool = False) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        verb = "ENABLE" if enabled else "DISABLE"
        for event in TRIGGERS:
            await conn.execute(f"ALTER TABLE tasks {verb} TRIGGER project_task_counts_{event}")
        if recount:
            await conn.execute(RECOUNT)
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.counter_cost", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    embedded = EmbeddedPostgres(data_dir(100_000))
    url = embedded.start()
    try:
        run_sync(url, "upgrade", "head")
        data = asyncio.run(ensure_data(url, 100_000))
        body = operations(data)["M1 createTask"]
        graphql_url, server = start_server(url, workers=2)
        try:
            wait_up(graphql_url.replace("/graphql", "/readyz"), server)
            token = sign_in(graphql_url)
            results: dict[bool, list[wrk.WrkResult]] = {True: [], False: []}
            for r in range(args.rounds):
                for enabled in (True, False) if r % 2 == 0 else (False, True):
                    asyncio.run(triggers(url, enabled))
                    result = wrk.run(
                        graphql_url,
                        body,
                        token,
                        seconds=args.seconds,
                        connections=args.connections,
                    )
                    results[enabled].append(result)
                    state = "counters on " if enabled else "counters off"
                    print(
                        f"round {r + 1} {state}: {result.rps:7.1f} req/s  p50 {result.p50_ms:6.1f} ms"
                        f"  errors {result.errors}",
                        flush=True,
                    )
        finally:
            server.terminate()
            server.wait(timeout=60)
            asyncio.run(triggers(url, True, recount=True))
        on = statistics.median(r.rps for r in results[True])
        off = statistics.median(r.rps for r in results[False])
        ratios = [a.rps / b.rps for a, b in zip(results[True], results[False], strict=True)]
        print(
            f"M1 createTask, medians of {args.rounds} rounds: counters on {on:.1f} req/s, "
            f"off {off:.1f} req/s; on/off {statistics.median(ratios):.3f} "
            f"(rounds {min(ratios):.3f} to {max(ratios):.3f})"
        )
    finally:
        embedded.stop()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("BENCH_SECRET", secrets.token_urlsafe(32))
    raise SystemExit(main())
