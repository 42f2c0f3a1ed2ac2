"""A request that names its document by id, turned into one that carries it, before anything
else looks at it: the fast path, cost, rate limits, authorization and idempotency then see an
ordinary request.

The id comes as Apollo's `extensions.persistedQuery.sha256Hash` (APQ and trusted documents),
or as `documentId` (graphql-codegen, Relay) or `doc_id` (Relay)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphql import GraphQLSchema

from graphql_api.documents.check import introspection_only, problems
from graphql_api.documents.store import DocumentStore, sha256_hex
from graphql_api.settings import Settings


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str
    code: str


# Exactly what Apollo Client's persisted-queries link looks for before it retries with the
# document (it reads the message, or the code, and needs HTTP 200).
NOT_FOUND = Refusal(200, "PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND")
NOT_TRUSTED = Refusal(
    403,
    "only trusted documents are accepted here: send the id of an operation of the "
    "frontend's imported manifest (`graphql-api documents import`)",
    "PERSISTED_QUERY_NOT_TRUSTED",
)


def _bad(message: str, code: str = "BAD_REQUEST") -> Refusal:
    return Refusal(400, message, code)


def requested_id(payload: dict[str, Any]) -> tuple[str | None, bool] | Refusal:
    """(the id, whether it came by Apollo's APQ protocol), (None, False) without one."""
    extensions = payload.get("extensions")
    persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
    if persisted is not None:
        if not isinstance(persisted, dict) or persisted.get("version") != 1:
            return _bad("extensions.persistedQuery must be {version: 1, sha256Hash: ...}")
        sha = persisted.get("sha256Hash")
        if not isinstance(sha, str) or not 1 <= len(sha) <= 128:
            return _bad("extensions.persistedQuery.sha256Hash must be a string")
        return sha.lower(), True
    for key in ("documentId", "doc_id"):
        value = payload.get(key)
        if value is not None:
            if not isinstance(value, str) or not 1 <= len(value) <= 128:
                return _bad(f"{key} must be a string of at most 128 characters")
            return _strip_prefix(value), False
    return None, False


def _strip_prefix(value: str) -> str:
    # graphql-codegen can prefix the hash with its algorithm ("sha256:<hex>").
    algorithm, _, rest = value.partition(":")
    return rest if rest and algorithm in ("sha256", "sha1", "md5") else value


class DocumentRequests:
    def __init__(self, store: DocumentStore, settings: Settings, schema: GraphQLSchema) -> None:
        self.store = store
        self.settings = settings
        self.schema = schema

    @property
    def trusted_only(self) -> bool:
        return self.settings.trusted_documents == "only"

    async def resolve(self, payload: dict[str, Any]) -> dict[str, Any] | Refusal:
        """The payload with its document in `query`, or why it is refused."""
        found = requested_id(payload)
        if isinstance(found, Refusal):
            return found
        document_id, apq = found
        query = payload.get("query")
        sent = query if isinstance(query, str) and query else None
        if document_id is None:
            if self.trusted_only and sent is not None and not self._introspection(sent):
                return NOT_TRUSTED
            return payload
        stored = await self.store.get(document_id)
        if stored is not None:
            if self.trusted_only and not stored.trusted:
                return NOT_TRUSTED
            if sent is not None and sent != stored.document:
                return _bad(
                    "the document sent differs from the one stored under its id",
                    "PERSISTED_QUERY_HASH_MISMATCH",
                )
            return {**payload, "query": stored.document}
        if sent is None:
            return NOT_FOUND
        if self.trusted_only:
            return NOT_TRUSTED
        if not apq:
            return payload  # an id we do not know, with its document: run the document
        if sha256_hex(sent) != document_id:
            return _bad(
                "extensions.persistedQuery.sha256Hash is not the SHA-256 of the document",
                "PERSISTED_QUERY_HASH_MISMATCH",
            )
        if not problems(sent, self.schema, self.settings):
            # Only documents that would run are kept; the executor reports the others' errors.
            await self.store.register(document_id, sent)
        return payload

    def _introspection(self, document: str) -> bool:
        """GraphiQL's docs explorer keeps working wherever introspection is on."""
        return self.settings.introspection_enabled and introspection_only(document)
