from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base


class LoginThrottle(Base):
    """Failed sign-in attempts per key in the current window: "account-ip:<email> <address>",
    "ip:<address>" or "account:<email>" (graphql_api/auth/throttle.py says why three).
    Kept in PostgreSQL so the limit holds across worker processes and restarts."""

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    window_started_at: Mapped[datetime]
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
