"""Idempotent mutations: the `Idempotency-Key` request header (Stripe's semantics).

A signed-in client sends a key of its choosing with a mutation over HTTP POST. The key, a
fingerprint of the request and the response's `data` are stored in the mutation's own transaction,
so they commit or roll back with its writes. A retry with the same key, after a dropped connection
or a commit whose acknowledgement was lost, gets the stored `data` byte for byte with
`Idempotent-Replayed: true`, and nothing is written twice.

- Keys are per user: one user can never see another's stored response. Anonymous callers and the
  account mutations (register, login, refreshSession, logout) are refused a key: their responses
  carry credentials, which are not kept at rest.
- The same key with another document, operation name or variables: IDEMPOTENCY_KEY_REUSED (422).
- A request whose key is in use by a request still running waits for it (the key's row lock),
  then answers with its outcome, or executes if that one rolled back.
- Only committed outcomes are stored: an operation that ends with top-level errors is rolled back,
  key included, and a retry executes again.
- Keys expire after IDEMPOTENCY_KEY_TTL_SECONDS; an expired key executes anew. Each new key
  purges a few expired ones, so the table holds about one TTL's worth of keys.
- On a query the header is ignored: reads are safe to repeat.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import orjson
from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionSetNode,
)
from graphql.utilities import get_operation_ast
from starlette.requests import Request
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from db.repositories.idempotency_keys import IdempotencyKeyRepository
from graphql_api.context import Context
from graphql_api.errors import ApiError

HEADER = "idempotency-key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# Expired keys deleted by each new key: bounded work per request, and the table cannot grow
# beyond the keys of one TTL (each new key removes up to this many old ones).
PURGE_BATCH = 10
# Their responses hold access and refresh tokens, which are never stored in the clear.
ACCOUNT_FIELDS = frozenset({"register", "login", "refreshSession", "logout"})


class Idempotency(SchemaExtension):
    """Listed after UnitOfWork: it claims the key in the operation's transaction before execution
    and stores the response before the unit of work commits."""

    async def on_execute(self) -> AsyncIterator[None]:
        ec = self.execution_context
        ctx: Context = ec.context
        claimed: tuple[uuid.UUID, str] | None = None
        if (
            ec.result is None  # not refused already (cost or rate limit)
            and isinstance(ctx.request, Request)  # HTTP; over WebSocket there are no headers
            and HEADER in ctx.request.headers
            and ec.operation_type == OperationType.MUTATION
        ):
            try:
                claimed = await self._claim(ctx)
            except Refused as refused:
                ec.result = ExecutionResult(data=None, errors=[ApiError(*refused.args)])
                if ctx.response is not None:
                    ctx.response.status_code = refused.status
        yield
        result = ec.result
        if claimed is not None and result is not None and not result.errors:
            # The unit of work commits this with the mutation's writes; with top-level errors it
            # rolls back both, so a failed attempt leaves no key behind.
            user_id, key = claimed
            data = orjson.dumps(result.data)
            await IdempotencyKeyRepository(ctx.db).store_response(user_id, key, data)

    async def _claim(self, ctx: Context) -> tuple[uuid.UUID, str] | None:
        """The (user, key) this operation now owns, or None when it was answered (a replay)."""
        ec = self.execution_context
        request = ctx.request
        assert isinstance(request, Request) and ec.graphql_document is not None
        key = valid_key(request.headers.getlist(HEADER))
        if ctx.viewer_id is None or ctx.bad_token:
            raise Refused(
                "an Idempotency-Key needs a signed-in caller (a valid bearer token)",
                "BAD_REQUEST",
                400,
            )
        if (await request.body()).lstrip()[:1] == b"[":
            raise Refused("an Idempotency-Key is not accepted on a batch", "BAD_REQUEST", 400)
        if fields := root_fields(ec.graphql_document, ec.operation_name) & ACCOUNT_FIELDS:
            raise Refused(
                f"{', '.join(sorted(fields))} does not take an Idempotency-Key: "
                "its response holds credentials, which are not stored",
                "BAD_REQUEST",
                400,
            )
        mine = fingerprint(ec.query, ec.operation_name, ec.variables)
        repository = IdempotencyKeyRepository(ctx.db)
        ttl = timedelta(seconds=ctx.settings.idempotency_key_ttl_s)
        ctx.db.session.info["idempotency_key"] = key  # names the transaction (logs, tests)
        stored = await repository.claim(ctx.viewer_id, key, mine, ttl)
        if stored is None:
            await repository.purge_expired(PURGE_BATCH)
            return ctx.viewer_id, key
        if stored.fingerprint != mine:
            raise Refused(
                "this Idempotency-Key was used for another request (document, operationName "
                "or variables differ); use a new key for a new request",
                "IDEMPOTENCY_KEY_REUSED",
                422,
            )
        assert stored.response is not None, "a committed key always holds its response"
        # The first response's data, as sent: orjson embeds a Fragment's bytes as they are.
        ec.result = ExecutionResult(data=orjson.Fragment(stored.response), errors=None)  # type: ignore[arg-type]
        if ctx.response is not None:
            ctx.response.headers[REPLAYED_HEADER] = "true"
        return None


def valid_key(values: list[str]) -> str:
    """1 to 255 printable ASCII characters, sent once."""
    if len(values) != 1:
        raise Refused("send one Idempotency-Key header, not several", "BAD_REQUEST", 400)
    key = values[0]
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all(" " <= c <= "~" for c in key):
        raise Refused(
            f"an Idempotency-Key is 1 to {MAX_KEY_LENGTH} printable ASCII characters",
            "BAD_REQUEST",
            400,
        )
    return key


def fingerprint(query: str | None, operation_name: str | None, variables: object) -> bytes:
    """sha256 of what makes a request this request; variables with their keys sorted."""
    canonical = orjson.dumps(
        {"query": query or "", "operationName": operation_name, "variables": variables or {}},
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(canonical).digest()


def root_fields(document: DocumentNode, operation_name: str | None) -> set[str]:
    """The names of an operation's root fields, through fragments."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return set()
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    names: set[str] = set()
    seen: set[str] = set()
    pending: list[SelectionSetNode] = [operation.selection_set]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FieldNode):
                names.add(selection.name.value)
            elif isinstance(selection, InlineFragmentNode):
                pending.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
                seen.add(selection.name.value)
                if (fragment := fragments.get(selection.name.value)) is not None:
                    pending.append(fragment.selection_set)
    return names


class Refused(Exception):
    """The request is not executed: a top-level error with `code`, and this HTTP status."""

    def __init__(self, message: str, code: str, status: int) -> None:
        super().__init__(message, code)
        self.status = status
