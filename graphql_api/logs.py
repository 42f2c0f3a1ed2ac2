"""Logging set-up: one line per record, with the request id where there is one."""

from __future__ import annotations

import logging
import sys
from typing import TextIO


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to sys.stderr as it is when each record is written, not when the handler was
    made (a test harness or a daemon may swap it, and a closed stream must not be kept)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def configure_logging(level: str) -> None:
    # force: whatever ran first (Alembic's fileConfig, a library's basicConfig) must not keep
    # its handlers and level, or LOG_LEVEL would silently depend on how the server was started.
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        handlers=[_StderrHandler()],
        force=True,
    )
    # SQLAlchemy and asyncpg log at INFO on their own; keep the server's log about the server.
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
