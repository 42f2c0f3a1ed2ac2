"""Domain errors: what repositories raise instead of driver exceptions."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from db.encodings import sql_literal

# A compiled read refuses with this SQLSTATE (alembic 0006: graphql_refused) where a role check
# fails; the fast path then lets the resolvers answer, and they report the error.
REFUSED_SQLSTATE = "GQ403"


def refused_sql(reason: str) -> str:
    """SQL that raises REFUSED_SQLSTATE when evaluated: the ELSE of a compiled role check."""
    return f"graphql_refused({sql_literal(reason)})"


def is_refusal(exc: BaseException) -> bool:
    """Whether the driver's error (asyncpg's, or SQLAlchemy's wrapping of it) is a refusal."""
    seen: BaseException | None = exc
    while seen is not None:
        if getattr(seen, "sqlstate", None) == REFUSED_SQLSTATE:
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


class DomainError(Exception):
    code = "INVALID_INPUT"

    def __init__(self, message: str, *, field: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(DomainError):
    code = "NOT_FOUND"


class AlreadyExists(DomainError):
    code = "ALREADY_EXISTS"

    def __init__(
        self, message: str, *, constraint: str | None = None, field: list[str] | None = None
    ) -> None:
        super().__init__(message, field=field)
        self.constraint = constraint


class Conflict(DomainError):
    code = "CONFLICT"


class InvalidInput(DomainError):
    code = "INVALID_INPUT"


class Forbidden(DomainError):
    """The viewer can see the thing but their role does not allow the action."""

    code = "FORBIDDEN"


def _sqlstate(exc: IntegrityError) -> tuple[str | None, str | None]:
    orig = exc.orig
    cause = getattr(orig, "__cause__", None) or orig
    return getattr(cause, "sqlstate", None), getattr(cause, "constraint_name", None)


def translate(exc: IntegrityError | StaleDataError, entity: str) -> DomainError:
    """Turn a constraint violation into the domain error a user can act on."""
    if isinstance(exc, StaleDataError):
        return Conflict(f"{entity} was changed by someone else; reload it and try again")
    state, constraint = _sqlstate(exc)
    if state == "23505":
        return AlreadyExists(f"{entity} already exists", constraint=constraint)
    if state == "23503":
        return NotFound(f"a {entity} refers to something that does not exist")
    return InvalidInput(f"{entity} violates a database rule ({constraint or state})")
