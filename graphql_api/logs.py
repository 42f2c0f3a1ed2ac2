"""Logging set-up: one line per record, as text or (LOG_FORMAT=json) as one JSON object, with
the request's id, operation and viewer where there is a request."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from graphql_api.observability.request_log import REQUEST_LOG, RequestLog

ACCESS_LOGGER = "graphql_api.access"
access_log = logging.getLogger(ACCESS_LOGGER)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to sys.stderr as it is when each record is written, not when the handler was
    made (a test harness or a daemon may swap it, and a closed stream must not be kept)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the request's fields (an access
    line's `fields` too), and the exception as a field."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        entry = REQUEST_LOG.get()
        if entry is not None:
            line.update(entry.fields())
        line.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return orjson.dumps(line, default=str).decode()


def access_fields(entry: RequestLog, duration_s: float) -> dict[str, object]:
    return {
        "method": entry.method,
        "path": entry.target,
        "status": entry.status,
        "duration_ms": round(duration_s * 1000, 3),
        "request_id": entry.request_id,
        "operation_name": entry.operation_name,
        "operation_type": entry.operation_type,
        "viewer_id": entry.viewer_id,
        "sql_statements": entry.sql_statements,
        "outcome": entry.outcome or "ok",
        "execution": entry.path,
    }


def log_access(entry: RequestLog, duration_s: float) -> None:
    """The access line of one request to /graphql (uvicorn's own is off)."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    fields = access_fields(entry, duration_s)
    access_log.info(
        "%s %s %s %.1f ms %s",
        entry.method,
        entry.target,
        entry.status,
        duration_s * 1000,
        " ".join(f"{k}={v}" for k, v in fields.items() if k not in _IN_MESSAGE and v is not None),
        extra={"fields": fields},
    )


_IN_MESSAGE = {"method", "path", "status", "duration_ms"}


def configure_logging(level: str, log_format: str = "text") -> None:
    handler = _StderrHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    # force: whatever ran first (Alembic's fileConfig, a library's basicConfig) must not keep
    # its handlers and level, or LOG_LEVEL would silently depend on how the server was started.
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # SQLAlchemy and asyncpg log at INFO on their own; keep the server's log about the server.
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    if log_format == "json":
        # uvicorn's loggers write through the root handler too, so every line is JSON (its
        # access log stays as `serve` left it: off, graphql_api.access replaces it).
        for name in ("uvicorn", "uvicorn.error", "uvicorn.asgi"):
            uvicorn_logger = logging.getLogger(name)
            uvicorn_logger.handlers.clear()
            uvicorn_logger.propagate = True
