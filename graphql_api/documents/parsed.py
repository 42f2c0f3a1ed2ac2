"""Persisted documents, parsed once: the process keeps the DocumentNode of each document it
loaded by id, and the executor's parser takes it from here instead of parsing the text again.
The same node each time also keeps strawberry's validation cache (keyed by the node) hitting,
however many other documents pass through the shared parser cache meanwhile."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

from graphql import DocumentNode, GraphQLError, OperationType, get_operation_ast, parse
from strawberry.extensions import ParserCache

PINNED_SIZE = 1024
_pinned: OrderedDict[str, DocumentNode] = OrderedDict()


def pin(document: str, max_tokens: int) -> None:
    """Parse a stored document now (registration or first load), once for the process."""
    if document in _pinned:
        _pinned.move_to_end(document)
        return
    try:
        _pinned[document] = parse(document, max_tokens=max_tokens)
    except GraphQLError:
        return  # the executor reports it, as for any document
    if len(_pinned) > PINNED_SIZE:
        _pinned.popitem(last=False)


def is_subscription(query: str | None, operation_name: str | None, max_tokens: int | None) -> bool:
    """Whether the operation the request names is a subscription (False for a document that
    does not parse: the executor reports that), without parsing the text of a document that
    cannot hold one."""
    if not query or "subscription" not in query:
        return False
    try:
        document = pinned(query) or parse(query, max_tokens=max_tokens)
    except GraphQLError:
        return False
    operation = get_operation_ast(document, operation_name)
    return operation is not None and operation.operation == OperationType.SUBSCRIPTION


def pinned(document: str | None) -> DocumentNode | None:
    return _pinned.get(document) if document is not None else None


class PinnedParserCache(ParserCache):
    """strawberry's ParserCache, with persisted documents already parsed."""

    def on_parse(self) -> Iterator[None]:
        node = pinned(self.execution_context.query)
        if node is None:
            yield from super().on_parse()
            return
        self.execution_context.graphql_document = node
        yield
