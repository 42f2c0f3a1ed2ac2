"""Persisted documents: GraphQL documents sent by id (APQ and trusted manifests).

Revision ID: 0005
Revises: 0004c
Create Date: 2026-12-01 10:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "persisted_documents",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("trusted", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "last_used_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_persisted_documents")),
    )
    op.create_index(
        "ix_persisted_documents_last_used_at",
        "persisted_documents",
        ["last_used_at"],
        unique=False,
        postgresql_where=sa.text("NOT trusted"),
    )


def downgrade() -> None:
    op.drop_index("ix_persisted_documents_last_used_at", table_name="persisted_documents")
    op.drop_table("persisted_documents")
