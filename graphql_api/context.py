"""The typed per-request context."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from db.session import DbSession
from graphql_api.settings import Settings


@dataclass
class Context:
    request: Request | WebSocket
    response: Response | None
    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    viewer_id: uuid.UUID | None = None
    # Opened by the UnitOfWork extension for the length of one operation.
    _db: DbSession | None = None
    loaders: dict[str, Any] = field(default_factory=dict)

    @property
    def db(self) -> DbSession:
        if self._db is None:
            raise RuntimeError("no database session: used outside an operation")
        return self._db
