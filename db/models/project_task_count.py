from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base
from db.models.enums import TaskStatus, task_status_type


class ProjectTaskCount(Base):
    """How many tasks a project has per status, live and deleted apart: what `totalCount` of a
    board (unfiltered or by status) sums instead of counting the tasks.

    Kept by statement-level triggers on `tasks` (migration 0004c), in the writing transaction,
    so every write path (the ORM, INSERT ... SELECT, COPY, cascades) keeps them exact; rows are
    upserted in (project_id, status, deleted) order, so concurrent writers lock them in one order.
    """

    __tablename__ = "project_task_counts"

    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[TaskStatus] = mapped_column(task_status_type, primary_key=True)
    deleted: Mapped[bool] = mapped_column(primary_key=True)
    # The tenant boundary, as on every tenant-owned table (no foreign key: the project's covers
    # deletion, and it is the task's own workspace).
    workspace_id: Mapped[uuid.UUID]
    count: Mapped[int]
