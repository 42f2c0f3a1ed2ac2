from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base


class PersistedDocument(Base):
    """A GraphQL document a client may send by id instead of by text: trusted ones imported from
    a frontend's manifest at deploy time (never evicted), and ones registered by clients with
    Apollo's automatic persisted queries (APQ; bounded in number, least recently loaded first
    out)."""

    __tablename__ = "persisted_documents"
    __table_args__ = (
        # Eviction walks the APQ documents, least recently loaded first.
        Index(
            "ix_persisted_documents_last_used_at",
            "last_used_at",
            postgresql_where=text("NOT trusted"),
        ),
    )

    # sha256 hex for APQ; for a manifest, whatever id its tool chose (sha256, sha1, md5, ...).
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    document: Mapped[str] = mapped_column(Text)
    trusted: Mapped[bool] = mapped_column(server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # When a server process last loaded it (a process keeps what it loaded in memory: its hits
    # cost no statement, and write nothing).
    last_used_at: Mapped[datetime] = mapped_column(server_default=func.now())
