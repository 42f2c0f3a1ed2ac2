"""audit_events.request_id holds what the server accepts as a request id: up to 128 characters.

A client's X-Request-ID of 65 to 128 characters was accepted (graphql_api/http_front.py) but did
not fit the column, so every audited write of that request failed.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 00:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Widening a varchar rewrites nothing (PostgreSQL changes the column's type only).
    op.alter_column(
        "audit_events",
        "request_id",
        type_=sa.String(length=128),
        existing_type=sa.String(length=64),
        existing_nullable=True,
    )


def downgrade() -> None:
    op.alter_column(
        "audit_events",
        "request_id",
        type_=sa.String(length=64),
        existing_type=sa.String(length=128),
        existing_nullable=True,
        postgresql_using="left(request_id, 64)",
    )
