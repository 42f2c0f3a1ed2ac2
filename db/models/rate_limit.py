from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base


class RateLimit(Base):
    """Points handed out to server processes for one client in the current window. Processes
    reserve points in chunks and spend them locally; the total never exceeds the budget."""

    __tablename__ = "rate_limits"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[datetime]
    reserved: Mapped[int] = mapped_column(default=0)
