from __future__ import annotations

from typing import Any

import strawberry
from strawberry.permission import BasePermission


class IsAuthenticated(BasePermission):
    """Everything but register, login, refreshSession, logout and viewer needs a valid token."""

    message = "sign in first: a valid access token is required"
    error_extensions = {"code": "UNAUTHENTICATED"}

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        ctx = info.context
        return ctx.viewer_id is not None and not ctx.bad_token


AUTHENTICATED: list[type[BasePermission]] = [IsAuthenticated]
