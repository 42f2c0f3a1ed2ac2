"""Errors of the API layer: expected ones become userErrors; request-level ones top-level errors."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError

from db.errors import DomainError


class InvalidCredentials(DomainError):
    code = "INVALID_CREDENTIALS"


class RateLimited(DomainError):
    code = "RATE_LIMITED"


class ApiError(GraphQLError):
    """A top-level error with a stable `extensions.code`."""

    def __init__(self, message: str, code: str, **extensions: Any) -> None:
        super().__init__(message, extensions={"code": code, **extensions})


def unauthenticated() -> ApiError:
    return ApiError("sign in first: a valid access token is required", "UNAUTHENTICATED")


# Domain errors that escape a query resolver become top-level errors with these codes.
TOP_LEVEL_CODES = {
    "INVALID_INPUT": "BAD_REQUEST",
    "NOT_FOUND": "NOT_FOUND",
    "FORBIDDEN": "FORBIDDEN",
    "CONFLICT": "CONFLICT",
    "ALREADY_EXISTS": "CONFLICT",
    "INVALID_CREDENTIALS": "UNAUTHENTICATED",
    "RATE_LIMITED": "RATE_LIMITED",
}
