"""How PostgreSQL runs each compiled corpus read on the benchmark's data set: milliseconds per
execution of the prepared statement on one connection, beside the limit endpoint's hand-written
statement for the same answer (bench/limit.py, run the same way), and whether PostgreSQL settled
on a generic plan (planned once) or plans ours anew on every execution (custom plans), which
costs more than running it. `tests/test_budgets.py` checks the generic plans on a small data
set; this shows them where they matter, on 100,000 tasks.

    .venv/bin/python -m bench.plans [--executions 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

import asyncpg
from graphql import parse

from bench import limit
from bench.run import data_dir, ensure_data, operations
from db.embedded import EmbeddedPostgres
from db.migrations import run_sync
from db.urls import asyncpg_dsn
from graphql_api.fast.compiler import Compiler
from graphql_api.schema import schema
from graphql_api.seed.bulk import BENCH_EMAIL


async def measure(dsn: str, sql: str, values: list[Any], executions: int) -> tuple[float, str]:
    conn = await asyncpg.connect(dsn)
    try:
        statement = await conn.prepare(sql)
        for _ in range(10):  # PostgreSQL weighs the generic plan after five custom ones
            await statement.fetchval(*values)
        started = time.perf_counter()
        for _ in range(executions):
            await statement.fetchval(*values)
        ms = (time.perf_counter() - started) / executions * 1000
        generic, custom = await conn.fetchrow(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1",
            sql,
        )
    finally:
        await conn.close()
    return ms, "generic" if generic > custom else "custom (planned every time)"


async def limit_ms(dsn: str, viewer: Any, body: dict[str, Any], executions: int) -> float:
    os.environ["LIMIT_ACTOR"] = str(viewer)
    conn = await asyncpg.connect(dsn, server_settings={"plan_cache_mode": "force_generic_plan"})
    try:
        name, variables = body.get("operationName"), body.get("variables") or {}
        for _ in range(10):
            await limit.answer(conn, name, variables)
        started = time.perf_counter()
        for _ in range(executions):
            await limit.answer(conn, name, variables)
        return (time.perf_counter() - started) / executions * 1000
    finally:
        await conn.close()


async def report(url: str, executions: int) -> None:
    data = await ensure_data(url, 100_000)
    dsn = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn)
    try:
        viewer = await conn.fetchval("SELECT id FROM users WHERE email = $1", BENCH_EMAIL)
    finally:
        await conn.close()
    print("| operation | ms per execution | limit ms | plan |\n| --- | ---: | ---: | --- |")
    for name, body in operations(data).items():
        if "query" not in body:
            continue  # sent by hash: the same statement as its twin by text
        document = parse(body["query"])
        try:
            sql, values = Compiler(
                schema._schema,
                document,
                body.get("operationName"),
                body.get("variables"),
                viewer,
                None,  # type: ignore[arg-type]  # the compiler reads no rows itself
            ).compile()
        except Exception as exc:  # mutations, and anything the compiler declines
            print(f"| {name} | - | - | not compiled: {exc} |")
            continue
        ms, plan = await measure(dsn, sql, values, executions)
        theirs = await limit_ms(dsn, viewer, body, executions)
        print(f"| {name} | {ms:.2f} | {theirs:.2f} | {plan} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--executions", type=int, default=200)
    args = parser.parse_args()
    embedded = None
    url = os.environ.get("DATABASE_URL")
    if not url:
        embedded = EmbeddedPostgres(data_dir(100_000))
        url = embedded.start()
    try:
        run_sync(url, "upgrade", "head")
        asyncio.run(report(url, args.executions))
    finally:
        if embedded:
            embedded.stop()


if __name__ == "__main__":
    main()
