"""What is known about the HTTP request being served, for its access-log line, its metrics and
every log record written while it runs.

GraphQLFront sets it when a request arrives; the Observe extension fills in the operation; the
SQL counter adds statements. It is one mutable object in a ContextVar, so tasks the request
starts (its work, sibling resolvers) write into the same record.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class RequestLog:
    request_id: str
    method: str
    target: str  # the HTTP path
    started: float = field(default_factory=time.perf_counter)
    status: int = 0
    operation_name: str | None = None
    operation_type: str | None = None  # query, mutation, subscription
    viewer_id: str | None = None
    sql_statements: int = 0
    outcome: str | None = None  # "ok" or the first error code
    path: str = "resolvers"  # "fast" when the answer came from a compiled statement

    @property
    def duration_s(self) -> float:
        return time.perf_counter() - self.started

    def fields(self) -> dict[str, object]:
        """For a log record written during the request: what is known so far."""
        known: dict[str, object] = {"request_id": self.request_id}
        if self.operation_name is not None:
            known["operation_name"] = self.operation_name
        if self.viewer_id is not None:
            known["viewer_id"] = self.viewer_id
        return known


REQUEST_LOG: ContextVar[RequestLog | None] = ContextVar("request_log", default=None)


def note_outcome(code: str) -> None:
    """The request's outcome is its first error code (later ones do not replace it)."""
    entry = REQUEST_LOG.get()
    if entry is not None and entry.outcome in (None, "ok"):
        entry.outcome = code


def note_statement() -> None:
    entry = REQUEST_LOG.get()
    if entry is not None:
        entry.sql_statements += 1
