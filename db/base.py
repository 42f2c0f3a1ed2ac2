"""Declarative base with a constraint naming convention, and the shared column mixins."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import DateTime, MetaData, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from db.ids import uuid7

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        uuid.UUID: UUID(as_uuid=True),
        datetime: DateTime(timezone=True),
    }

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        # Server-side values (timestamps) come back with RETURNING: an expired attribute would
        # need a lazy load, which async code must never do.
        args: dict[str, Any] = {"eager_defaults": True}
        klass = cast("type[Any]", cls)
        if issubclass(klass, VersionMixin):
            # Optimistic concurrency: UPDATE ... WHERE version = :seen, then version + 1.
            args["version_id_col"] = klass.version
        return args


class IdMixin:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class SoftDeleteMixin:
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)


class VersionMixin:
    """Optimistic concurrency: SQLAlchemy checks and bumps `version` on every UPDATE."""

    version: Mapped[int] = mapped_column(server_default="1")
