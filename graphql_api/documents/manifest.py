"""A frontend's manifest of operations, checked and imported as trusted documents at deploy
time: graphql-codegen's `persisted-documents.json` and Relay's `persisted_queries.json` (both
`{"<id>": "<document>"}`), or Apollo's persisted query manifest
(`{"format": "apollo-persisted-query-manifest", "operations": [{"id", "body", ...}]}`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from graphql import GraphQLSchema

from graphql_api.documents.check import problems
from graphql_api.settings import Settings


class ManifestError(ValueError):
    pass


def read_manifest(path: Path) -> dict[str, str]:
    try:
        data: Any = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise ManifestError(f"cannot read {path}: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise ManifestError(f"{path} is not JSON: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("operations"), list):
        pairs = [
            (op.get("id"), op.get("body")) for op in data["operations"] if isinstance(op, dict)
        ]
    elif isinstance(data, dict):
        pairs = list(data.items())
    else:
        raise ManifestError(f'{path} must be a JSON object: {{"<id>": "<document>", ...}}')
    documents: dict[str, str] = {}
    for document_id, document in pairs:
        if not isinstance(document_id, str) or not 1 <= len(document_id) <= 128:
            raise ManifestError(f"{path}: an id must be a string of 1 to 128 characters")
        if not isinstance(document, str):
            raise ManifestError(f"{path}: the document of {document_id} is not a string")
        documents[document_id] = document
    return documents


def check_manifest(
    documents: dict[str, str], schema: GraphQLSchema, settings: Settings
) -> dict[str, list[str]]:
    """The documents that would be refused, with why: by id."""
    found = {i: problems(d, schema, settings) for i, d in documents.items()}
    return {i: p for i, p in found.items() if p}


async def import_trusted(url: str, documents: dict[str, str]) -> int:
    from db.engine import create_engine, create_sessionmaker
    from db.repositories.persisted_documents import PersistedDocumentRepository
    from db.session import DbSession

    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        async with create_sessionmaker(engine)() as session:
            count = await PersistedDocumentRepository(DbSession(session)).import_trusted(documents)
            await session.commit()
    finally:
        await engine.dispose()
    return count
