"""Object types of the API."""

from __future__ import annotations

from datetime import datetime

import strawberry


@strawberry.type
class User:
    id: strawberry.ID
    email: str
    display_name: str
    created_at: datetime
