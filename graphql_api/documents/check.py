"""Whether a document would be accepted: parsed and validated as a request's would be, against
the server's schema and its document limits (graphql_api/limits/rules.py)."""

from __future__ import annotations

from graphql import GraphQLError, GraphQLSchema, OperationDefinitionNode, parse, specified_rules
from graphql import validate as graphql_validate

from graphql_api.limits.rules import rules
from graphql_api.settings import Settings


def problems(document: str, schema: GraphQLSchema, settings: Settings) -> list[str]:
    """What is wrong with the document, in the words a request would get; [] when nothing."""
    s = settings
    if len(document) > s.max_document_chars:
        return [
            f"the document is {len(document)} characters long; the limit is {s.max_document_chars}"
        ]
    try:
        parsed = parse(document, max_tokens=s.max_tokens)
    except GraphQLError as exc:
        return [exc.message]
    limits = rules(
        s.max_depth,
        s.max_aliases,
        s.max_fragment_spreads,
        s.max_directives,
        s.introspection_enabled,
    )
    errors = graphql_validate(schema, parsed, (*specified_rules, *limits))
    return [error.message for error in errors]


def introspection_only(document: str) -> bool:
    """Every operation asks only for __schema, __type or __typename (GraphiQL's docs)."""
    try:
        parsed = parse(document, max_tokens=10_000)
    except GraphQLError:
        return False
    operations = [d for d in parsed.definitions if isinstance(d, OperationDefinitionNode)]
    return bool(operations) and all(
        getattr(selection, "name", None) is not None and selection.name.value.startswith("__")  # type: ignore[attr-defined]
        for operation in operations
        for selection in operation.selection_set.selections
    )
