"""graphql_refused(reason): raises SQLSTATE GQ403 from inside a compiled statement.

The fast path compiles role checks (Workspace.auditEvents, tasks with includeDeleted) into its
one statement as `CASE WHEN <role allows> THEN ... ELSE graphql_refused(...) END`; the error
tells it to let the resolvers answer, which report FORBIDDEN exactly as they always do.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 10:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # VOLATILE (the default), so PostgreSQL never folds the call into a constant: it runs
    # only in the CASE branch that reaches it.
    op.execute(
        """
        CREATE FUNCTION graphql_refused(reason text) RETURNS json
        LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
          RAISE EXCEPTION USING ERRCODE = 'GQ403', MESSAGE = reason;
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION graphql_refused(text)")
