"""`graphql-api serve | migrate | export-schema | schema-check | documents | seed`."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from db.embedded import EmbeddedPostgres
from db.urls import DatabaseUrlError, asyncpg_dsn, redacted
from graphql_api.settings import Settings, SettingsError


class CliError(Exception):
    """A problem the user can fix; printed without a traceback."""


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except CliError as exc:
        print(f"graphql-api: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="graphql-api", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host", help="address to bind (default: HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default: PORT or 8000)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument("--reload", action="store_true", help="restart on code changes (dev)")
    serve.set_defaults(handler=cmd_serve)

    migrate = sub.add_parser("migrate", help="apply or inspect database migrations (Alembic)")
    msub = migrate.add_subparsers(dest="action", required=True)
    up = msub.add_parser("upgrade", help="upgrade to a revision (default head)")
    up.add_argument("revision", nargs="?", default="head")
    down = msub.add_parser("downgrade", help="downgrade to a revision (e.g. -1 or base)")
    down.add_argument("revision")
    msub.add_parser("current", help="show the database's revision")
    msub.add_parser("history", help="list the revisions")
    migrate.set_defaults(handler=cmd_migrate)

    export = sub.add_parser("export-schema", help="print the GraphQL SDL")
    export.add_argument("--output", "-o", type=Path, help="write to this file instead")
    export.set_defaults(handler=cmd_export_schema)

    check = sub.add_parser(
        "schema-check",
        help="compare the code's schema with an SDL file; exit 1 on breaking changes",
    )
    check.add_argument(
        "--against",
        type=Path,
        default=Path("schema.graphql"),
        help="the older SDL (default: schema.graphql)",
    )
    check.set_defaults(handler=cmd_schema_check)

    documents = sub.add_parser("documents", help="trusted documents (persisted operations)")
    dsub = documents.add_subparsers(dest="action", required=True)
    imp = dsub.add_parser(
        "import",
        help="check a frontend's manifest against the schema and its limits, then store its "
        "operations as trusted; exit 1 (importing nothing) if any would be refused",
    )
    imp.add_argument("manifest", type=Path, help="persisted-documents.json or the like")
    imp.add_argument("--check", action="store_true", help="only check, import nothing")
    documents.set_defaults(handler=cmd_documents)

    seed = sub.add_parser("seed", help="load demo or benchmark data")
    group = seed.add_mutually_exclusive_group(required=True)
    group.add_argument("--demo", action="store_true", help="a small demo workspace")
    group.add_argument("--tasks", type=int, metavar="N", help="N tasks at scale, through COPY")
    seed.add_argument("--workspaces", type=int, default=10)
    seed.add_argument("--projects", type=int, default=10, help="projects per workspace")
    seed.add_argument("--prefix", default="load", help="slug prefix of the bulk workspaces")
    seed.set_defaults(handler=cmd_seed)
    return parser


def load_settings() -> Settings:
    from graphql_api.logs import configure_logging

    try:
        settings = Settings.from_env()
    except (SettingsError, DatabaseUrlError) as exc:
        raise CliError(str(exc)) from None
    configure_logging(settings.log_level, settings.log_format_in_force)
    return settings


@contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """The configured database, or the embedded default (started, migrated, then stopped)."""
    if settings.database_url is not None:
        check_reachable(settings.database_url)
        yield settings.database_url
        return
    from db.migrations import run_sync

    embedded = EmbeddedPostgres(settings.embedded_data_dir)
    try:
        url = embedded.start()
    except Exception as exc:
        raise CliError(
            f"could not start the embedded PostgreSQL in {embedded.data_dir}: {exc}"
        ) from exc
    try:
        run_sync(url, "upgrade", "head")
        yield url
    finally:
        embedded.stop()


def check_reachable(url: str) -> None:
    import asyncpg

    async def probe() -> None:
        conn = await asyncpg.connect(asyncpg_dsn(url), timeout=5)
        await conn.close()

    try:
        asyncio.run(probe())
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        reason = str(exc) or type(exc).__name__
        raise CliError(f"cannot connect to the database at {redacted(url)}: {reason}") from None


def check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CliError(
                    f"port {port} on {host} is already in use; set PORT (`PORT=8001 make serve`) "
                    "or pass --port"
                ) from None
            raise CliError(f"cannot bind {host}:{port}: {exc.strerror}") from None


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    from graphql_api.http_protocol import CoalescingHttpToolsProtocol

    settings = load_settings()
    host = args.host or settings.host
    port = args.port or settings.port
    check_port_free(host, port)
    # uvicorn shuts down gracefully on SIGTERM and then re-raises it; by default that would end
    # the process at once, skipping the clean-up below (the embedded PostgreSQL would outlive us).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with database_url(settings) as url, metrics_directory(settings, args.workers):
        # Workers read their settings from the environment; hand them the resolved database.
        os.environ["DATABASE_URL"] = url
        if settings.pgbouncer:  # the URL's ?pgbouncer=true was removed from it
            os.environ["DB_PGBOUNCER"] = "on"
        serving = f"graphql-api: serving http://{host}:{port}/graphql"
        if settings.log_format_in_force == "json":
            logging.getLogger("graphql_api.cli").info(serving)  # every line is JSON
        else:
            print(serving, file=sys.stderr, flush=True)
        uvicorn.run(
            "graphql_api.app:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=args.workers,
            reload=args.reload,
            log_level=settings.log_level,
            # The app writes one access line per request (graphql_api.access), with its outcome.
            access_log=False,
            # JSON logs: uvicorn's records go through the app's JSON handler too.
            log_config=None if settings.log_format_in_force == "json" else LOGGING_CONFIG,
            # A WebSocket frame may be no larger than an HTTP body (it is read, and its JSON
            # parsed, before the connection is authenticated).
            ws_max_size=settings.max_body_bytes,
            # Compressing each small `next` frame cost more CPU than the bytes it saved on the
            # task-event fan-out (README, Live updates fan-out).
            ws_per_message_deflate=False,
            # SIGTERM: no new connections; requests in flight get this long to finish, then
            # the rest are cancelled (their transactions roll back) and WebSockets closed.
            timeout_graceful_shutdown=settings.shutdown_timeout_s,
            # The client's address from X-Forwarded-For only when the peer is a trusted proxy
            # (FORWARDED_ALLOW_IPS); otherwise the header is ignored, whoever sends it.
            proxy_headers=settings.forwarded_allow_ips is not None,
            forwarded_allow_ips=settings.forwarded_allow_ips,
            loop="uvloop",
            # httptools, writing each response's head and body in one send (http_protocol.py).
            http=CoalescingHttpToolsProtocol,
            lifespan="on",
        )
    return 0


@contextmanager
def metrics_directory(settings: Settings, workers: int) -> Iterator[None]:
    """Several workers share their Prometheus samples through files in a directory of this
    run's own (prometheus-client's multiprocess mode), removed when the server stops."""
    if not settings.metrics_enabled or workers <= 1 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="graphql-api-metrics-") as path:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
        try:
            yield
        finally:
            del os.environ["PROMETHEUS_MULTIPROC_DIR"]


def cmd_migrate(args: argparse.Namespace) -> int:
    from db.migrations import run_sync

    settings = load_settings()
    # Migrations hold a session-level advisory lock, which PgBouncer in transaction mode
    # would not keep: the direct URL when there is one.
    url = settings.database_direct_url or settings.database_url
    embedded = None
    if url is None:
        embedded = EmbeddedPostgres(settings.embedded_data_dir)
        url = embedded.start()
    else:
        check_reachable(url)
    try:
        if args.action in ("upgrade", "downgrade"):
            run_sync(url, args.action, args.revision)
        elif args.action == "current":
            run_sync(url, "current")
        else:
            run_sync(url, "history")
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def cmd_export_schema(args: argparse.Namespace) -> int:
    from graphql_api.schema import schema

    sdl = schema.as_str() + "\n"
    if args.output:
        args.output.write_text(sdl)
    else:
        sys.stdout.write(sdl)
    return 0


def cmd_schema_check(args: argparse.Namespace) -> int:
    from graphql import build_schema, find_breaking_changes, find_dangerous_changes

    from graphql_api.schema import schema

    try:
        old = build_schema(args.against.read_text())
    except OSError as exc:
        raise CliError(f"cannot read {args.against}: {exc.strerror}") from None
    except Exception as exc:  # a syntax or schema error in the file
        raise CliError(f"{args.against} is not a valid GraphQL schema: {exc}") from None
    new = schema._schema
    breaking = find_breaking_changes(old, new)
    dangerous = find_dangerous_changes(old, new)
    for b in breaking:
        print(f"BREAKING  {b.type.name}: {b.description}")
    for d in dangerous:
        print(f"DANGEROUS {d.type.name}: {d.description}")
    print(f"{len(breaking)} breaking, {len(dangerous)} dangerous change(s) against {args.against}")
    return 1 if breaking else 0


def cmd_documents(args: argparse.Namespace) -> int:
    from graphql_api.documents.manifest import (
        ManifestError,
        check_manifest,
        import_trusted,
        read_manifest,
    )
    from graphql_api.schema import schema

    settings = load_settings()
    try:
        documents = read_manifest(args.manifest)
    except ManifestError as exc:
        raise CliError(str(exc)) from None
    refused = check_manifest(documents, schema._schema, settings)
    for document_id, problems in refused.items():
        for problem in problems:
            print(f"{document_id}: {problem}", file=sys.stderr)
    if refused:
        raise CliError(
            f"{len(refused)} of {len(documents)} document(s) in {args.manifest} would be "
            "refused; nothing imported"
        )
    if args.check:
        print(f"{len(documents)} document(s) in {args.manifest} are valid")
        return 0
    with database_url(settings) as url:
        count = asyncio.run(import_trusted(url, documents))
    print(f"imported {count} trusted document(s) from {args.manifest}")
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    settings = load_settings()
    with database_url(settings) as url:
        if args.demo:
            return asyncio.run(_seed_demo(url))
        if args.tasks is None or args.tasks < 0 or args.workspaces < 1 or args.projects < 1:
            raise CliError("--tasks must be >= 0, --workspaces and --projects >= 1")
        from graphql_api.seed.bulk import AlreadySeeded, seed_bulk

        try:
            r = asyncio.run(seed_bulk(url, args.tasks, args.workspaces, args.projects, args.prefix))
        except AlreadySeeded as exc:
            raise CliError(str(exc)) from None
        print(
            f"seeded {r.tasks} tasks, {r.comments} comments, {r.task_labels} task labels in "
            f"{r.workspaces} workspaces x {r.projects // r.workspaces} projects "
            f"in {r.seconds:.1f} s"
        )
        from graphql_api.seed.bulk import BENCH_EMAIL, BENCH_PASSWORD

        print(f"sign in as {BENCH_EMAIL} / {BENCH_PASSWORD}")
    return 0


async def _seed_demo(url: str) -> int:
    from db.engine import create_engine, create_sessionmaker
    from graphql_api.seed.demo import DEMO_PASSWORD, USERS, seed_demo

    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        async with create_sessionmaker(engine)() as session:
            created = await seed_demo(session)
            await session.commit()
    finally:
        await engine.dispose()
    print("demo workspace 'acme' " + ("created" if created else "already present"))
    for email, name, role in USERS:
        print(f"  {role.value:<6} {email} / {DEMO_PASSWORD}  ({name})")
    return 0
