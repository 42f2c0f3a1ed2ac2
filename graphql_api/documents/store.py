"""Persisted documents by id: a table shared by every process, with each process's own LRU in
front of it, so that a request by a known id costs no statement."""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from db.repositories.persisted_documents import PersistedDocumentRepository
from db.session import DbSession
from graphql_api.database import Database
from graphql_api.documents.parsed import pin
from graphql_api.settings import Settings

log = logging.getLogger(__name__)

# Documents a process keeps in memory (each at most MAX_DOCUMENT_CHARS long).
CACHE_SIZE = 1024


@dataclass(frozen=True)
class Stored:
    document: str
    trusted: bool


def sha256_hex(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


class DocumentStore:
    def __init__(self, database: Database, settings: Settings, size: int = CACHE_SIZE) -> None:
        self.database = database
        self.settings = settings
        self.size = size
        self.cache: OrderedDict[str, Stored] = OrderedDict()
        # Requests answered from this process's memory and from the table, and registrations:
        # what a test (and the README's measurements) look at.
        self.counts = {"memory": 0, "table": 0, "registered": 0, "missed": 0}

    async def get(self, document_id: str) -> Stored | None:
        stored = self.cache.get(document_id)
        if stored is not None:
            self.cache.move_to_end(document_id)
            self.counts["memory"] += 1
            return stored
        async with self._session() as db:
            row = await PersistedDocumentRepository(db).load(document_id)
        if row is None:
            self.counts["missed"] += 1
            return None
        self.counts["table"] += 1
        stored = Stored(*row)
        self._remember(document_id, stored)
        return stored

    async def register(self, document_id: str, document: str) -> None:
        """An APQ registration: never trusted. APQ_MAX_DOCUMENTS=0 stores none."""
        if self.settings.apq_max_documents == 0:
            return
        async with self._session() as db:
            evicted = await PersistedDocumentRepository(db).register(
                document_id, document, self.settings.apq_max_documents
            )
        if evicted:
            log.info("APQ: %d least recently used document(s) evicted", evicted)
        self.counts["registered"] += 1
        self._remember(document_id, Stored(document, trusted=False))

    def _remember(self, document_id: str, stored: Stored) -> None:
        pin(stored.document, self.settings.max_tokens)
        self.cache[document_id] = stored
        if len(self.cache) > self.size:
            self.cache.popitem(last=False)

    def _session(self) -> Any:
        return _Session(self.database)


class _Session:
    """One short transaction of its own, committed on the way out."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def __aenter__(self) -> DbSession:
        assert self.database.sessionmaker is not None, "database not opened"
        self.session = self.database.sessionmaker()
        return DbSession(self.session)

    async def __aexit__(self, kind: Any, *_: Any) -> None:
        try:
            if kind is None:
                await self.session.commit()
        finally:
            await self.session.close()
