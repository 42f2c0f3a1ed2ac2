from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Computed, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, IdMixin, SoftDeleteMixin, TimestampMixin, VersionMixin
from db.models.enums import TaskPriority, TaskStatus, task_priority_type, task_status_type

# Written as PostgreSQL prints it back, so autogenerate sees no difference.
SEARCH_VECTOR_SQL = (
    "setweight(to_tsvector('english'::regconfig, "
    "(COALESCE(title, ''::character varying))::text), 'A'::\"char\") "
    "|| setweight(to_tsvector('english'::regconfig, "
    "COALESCE(description, ''::text)), 'B'::\"char\")"
)


class Task(IdMixin, TimestampMixin, SoftDeleteMixin, VersionMixin, Base):
    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("project_id", "number"),
        # Keyset pagination: one index per order, id as the tie-breaker.
        Index(None, "project_id", "created_at", "id"),
        Index(None, "project_id", "updated_at", "id"),
        Index(None, "project_id", "due_at", "id"),
        Index(None, "project_id", "priority", "id"),
        Index(None, "assignee_id"),
        Index(None, "created_by_id"),
        Index(None, "workspace_id"),
        Index("ix_tasks_search_vector", "search_vector", postgresql_using="gin"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    number: Mapped[int]
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    status: Mapped[TaskStatus] = mapped_column(task_status_type, default=TaskStatus.TODO)
    priority: Mapped[TaskPriority] = mapped_column(task_priority_type, default=TaskPriority.NONE)
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    due_at: Mapped[datetime | None] = mapped_column(default=None)
    search_vector: Mapped[str] = mapped_column(
        TSVECTOR, Computed(text(SEARCH_VECTOR_SQL), persisted=True), deferred=True
    )


class TaskLabel(Base):
    __tablename__ = "task_labels"
    __table_args__ = (Index(None, "label_id"),)

    task_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    label_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("labels.id", ondelete="CASCADE"), primary_key=True
    )
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
