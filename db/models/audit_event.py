from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, IdMixin


class AuditEvent(IdMixin, Base):
    """Append-only: one row per mutation, written in the same transaction as the change."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index(None, "workspace_id", "created_at", "id"),
        Index(None, "entity_id", "created_at", "id"),
        Index(None, "actor_id"),
    )

    # Null for account events (register, login) that belong to no workspace.
    workspace_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), default=None
    )
    actor_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    entity_type: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[uuid.UUID]
    action: Mapped[str] = mapped_column(String(50))
    changes: Mapped[dict[str, Any] | None] = mapped_column(JSONB, default=None)
    request_id: Mapped[str | None] = mapped_column(String(128), default=None)  # http_front
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
