from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, IdMixin, SoftDeleteMixin, TimestampMixin, VersionMixin


class Label(IdMixin, TimestampMixin, SoftDeleteMixin, VersionMixin, Base):
    __tablename__ = "labels"
    __table_args__ = (
        Index(
            "uq_labels_workspace_id_lower_name",
            "workspace_id",
            text("lower(name::text)"),
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index(None, "workspace_id", "created_at", "id"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(50))
    color: Mapped[str] = mapped_column(String(7))
