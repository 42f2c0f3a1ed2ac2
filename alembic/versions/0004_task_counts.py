"""Task counts per project, status and deleted flag, kept by triggers on tasks.

A board's `totalCount` (unfiltered or by status) sums a few of these rows instead of counting
the project's tasks. Statement-level AFTER triggers with transition tables keep them in the
writing transaction, whatever writes the tasks (the API's statements, COPY in the bulk seeder,
cascading deletes); each statement applies its net change per (project, status, deleted) in
one upsert, in that key order, so concurrent writers take the row locks in the same order and
writers in different projects never touch the same row.

Revision ID: 0004c
Revises: 0003
Create Date: 2026-12-01 10:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0004c"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The net change of one statement, per group: +1 for each new row, -1 for each old one. Groups
# of a project that is gone (a cascading delete from projects: its counters went with it) are
# skipped; groups whose changes cancel out (an edit of the title) take no lock at all.
_APPLY = """
    INSERT INTO project_task_counts AS c (project_id, status, deleted, workspace_id, count)
    SELECT d.project_id, d.status, d.deleted, d.workspace_id, sum(d.n)
    FROM ({rows}) AS d
    WHERE EXISTS (SELECT 1 FROM projects p WHERE p.id = d.project_id)
    GROUP BY d.project_id, d.status, d.deleted, d.workspace_id
    HAVING sum(d.n) <> 0
    ORDER BY d.project_id, d.status, d.deleted
    ON CONFLICT (project_id, status, deleted) DO UPDATE SET count = c.count + excluded.count;
"""
_NEW = "SELECT project_id, status, deleted_at IS NOT NULL AS deleted, workspace_id, 1 AS n FROM new_rows"
_OLD = "SELECT project_id, status, deleted_at IS NOT NULL AS deleted, workspace_id, -1 AS n FROM old_rows"

FUNCTION = f"""
CREATE FUNCTION project_task_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {_APPLY.format(rows=_NEW)}
    ELSIF TG_OP = 'UPDATE' THEN
        {_APPLY.format(rows=_NEW + " UNION ALL " + _OLD)}
    ELSE
        {_APPLY.format(rows=_OLD)}
    END IF;
    RETURN NULL;
END
$$
"""

TRIGGERS = {
    "INSERT": "REFERENCING NEW TABLE AS new_rows",
    "UPDATE": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "DELETE": "REFERENCING OLD TABLE AS old_rows",
}


def upgrade() -> None:
    op.create_table(
        "project_task_counts",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column(
            "status",
            postgresql.ENUM(
                "BACKLOG",
                "TODO",
                "IN_PROGRESS",
                "IN_REVIEW",
                "DONE",
                "CANCELED",
                name="task_status",
                create_type=False,
            ),
            nullable=False,
        ),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_project_task_counts_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "project_id", "status", "deleted", name=op.f("pk_project_task_counts")
        ),
    )
    # Writers wait from here to the commit (CREATE TRIGGER locks out writes to tasks), so the
    # counts filled below are exact and every later write goes through the triggers.
    op.execute(FUNCTION)
    for event, referencing in TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER project_task_counts_{event.lower()} AFTER {event} ON tasks "
            f"{referencing} FOR EACH STATEMENT EXECUTE FUNCTION project_task_counts_apply()"
        )
    op.execute(
        "INSERT INTO project_task_counts (project_id, status, deleted, workspace_id, count) "
        "SELECT project_id, status, deleted_at IS NOT NULL, workspace_id, count(*) FROM tasks "
        "GROUP BY project_id, status, deleted_at IS NOT NULL, workspace_id"
    )


def downgrade() -> None:
    for event in TRIGGERS:
        op.execute(f"DROP TRIGGER project_task_counts_{event.lower()} ON tasks")
    op.execute("DROP FUNCTION project_task_counts_apply()")
    op.drop_table("project_task_counts")
