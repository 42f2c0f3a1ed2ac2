from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, func
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base


class IdempotencyKey(Base):
    """A mutation's Idempotency-Key and the response it got, per user. Written in the mutation's
    own transaction, so a committed row always holds the outcome of a committed write (the
    response is NULL only while that transaction is running, and nobody else sees it then)."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # sha256 of the document, operation name and variables: the same key for another request
    # is refused, not answered with the first one's response.
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary(32))
    # The `data` member of the response as sent, byte for byte (JSONB would reorder keys).
    response: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(index=True)
