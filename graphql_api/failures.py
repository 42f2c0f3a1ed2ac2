"""What kind of failure an exception is, for the client: the one classification used by the
GraphQL error shaping, the cached-plan path and the HTTP front, so that a database that went
away is UNAVAILABLE (503, retry shortly) and a cancelled statement TIMEOUT on every path."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy.exc

RETRY_AFTER_S = 1

QUERY_CANCELED = "57014"  # statement_timeout (and cancels)
# A deadlock or a serialization failure: PostgreSQL rolled the transaction back, and the same
# operation run again is likely to pass (GraphQLApp runs it again, a few times, first).
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
# Connection exceptions (class 08), PostgreSQL shutting down or starting (57P01-57P03), no free
# connection slot (53300): the database is not there for us right now.
UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
# asyncpg's InternalClientError ("cannot switch to state ...; another operation is in progress")
# is what a statement meets when the server's goodbye (a restart, pg_terminate_backend) arrives
# as it starts: its connection is gone, and it is retired, not reused.
UNAVAILABLE_TYPES = (
    "ConnectionDoesNotExistError",
    "CannotConnectNowError",
    "ConnectionFailure",
    "InternalClientError",
)


@dataclass(frozen=True)
class Failure:
    code: str
    status: int
    message: str

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(RETRY_AFTER_S)} if self.code == "UNAVAILABLE" else {}


UNAVAILABLE = Failure(
    "UNAVAILABLE", 503, "the database is unavailable; retry in a moment (see Retry-After)"
)
TIMEOUT = Failure("TIMEOUT", 504, "the request took too long and was cancelled")
CONFLICT = Failure(
    "CONFLICT", 409, "the operation met concurrent ones and was rolled back; send it again"
)
INTERNAL = Failure("INTERNAL", 500, "Internal server error")


def _chain(exc: BaseException | None) -> list[BaseException]:
    """The exception and what it wraps (driver errors inside SQLAlchemy's, causes)."""
    seen: list[BaseException] = []
    while exc is not None and len(seen) < 8 and exc not in seen:
        seen.append(exc)
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
    return seen


def is_retryable(exc: BaseException | None) -> bool:
    return any(getattr(e, "sqlstate", None) in RETRYABLE_SQLSTATES for e in _chain(exc))


def is_statement_timeout(exc: BaseException | None) -> bool:
    return any(getattr(e, "sqlstate", None) == QUERY_CANCELED for e in _chain(exc))


def is_unavailable(exc: BaseException | None) -> bool:
    for e in _chain(exc):
        sqlstate = getattr(e, "sqlstate", None) or ""
        if sqlstate.startswith("08") or sqlstate in UNAVAILABLE_SQLSTATES:
            return True
        if isinstance(e, ConnectionError | sqlalchemy.exc.TimeoutError):  # refused; pool empty
            return True
        if isinstance(e, OSError) and e.errno is not None:  # a socket that failed
            return True
        if type(e).__name__ in UNAVAILABLE_TYPES:
            return True
        if isinstance(e, sqlalchemy.exc.DBAPIError) and e.connection_invalidated:
            return True
    return False


def classify(exc: BaseException | None) -> Failure | None:
    """UNAVAILABLE, TIMEOUT or CONFLICT for what the client can retry; None for anything else."""
    if is_unavailable(exc):
        return UNAVAILABLE
    if is_statement_timeout(exc) or isinstance(exc, TimeoutError):
        return TIMEOUT
    if is_retryable(exc):
        return CONFLICT
    return None
