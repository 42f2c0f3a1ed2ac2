"""Estimating, before execution, how many nodes an operation can return (GitHub's node limit).

Every connection field can return up to its page size (`first`/`last`, default 20) nodes for each
of its parent's nodes; `nodes(ids:)` returns one per id: each field's description says which it
is (graphql_api/schema/describe.py). The estimate is the sum, over those
fields, of the product of the page sizes on the way down to them.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from graphql.utilities import get_operation_ast

from graphql_api.limits.fragments import VISITS, FragmentResults
from graphql_api.schema.describe import description_of, nodes_returned

NODES_PER_POINT = 100


def _multiplier(
    field: FieldNode, definition: GraphQLField, returns: str, variables: VariableValues
) -> int | None:
    """The most nodes this field returns per parent, when it is a list that we count (its
    description says: graphql_api/schema/describe.py). Its arguments are those the executor
    will use: given, else the variable's default, else the argument's default in the schema."""
    try:
        args = get_argument_values(definition, field, variables)
    except GraphQLError:
        return 0  # the field is an error: it returns nothing
    # An undescribed connection (tests/test_descriptions.py forbids them in our schema) still
    # counts its page: the estimate must never come out low.
    return nodes_returned(description_of(definition), args, returns.endswith("Connection"))


class _Estimates:
    """Estimates already made, per parsed document (by identity: the parser caches, and the
    persisted documents, hand back the same DocumentNode for the same text), operation and
    variables. A registered or repeated document is estimated once, not per request."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self.entries: OrderedDict[tuple[int, str | None, bytes], tuple[DocumentNode, int]] = (
            OrderedDict()
        )

    @staticmethod
    def key(
        document: DocumentNode, operation_name: str | None, variables: dict[str, Any] | None
    ) -> tuple[int, str | None, bytes] | None:
        try:
            frozen = orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            return None  # not JSON: not worth remembering
        return id(document), operation_name, frozen

    def get(self, key: tuple[int, str | None, bytes], document: DocumentNode) -> int | None:
        entry = self.entries.get(key)
        if entry is None or entry[0] is not document:  # an id reused by another document
            return None
        self.entries.move_to_end(key)
        return entry[1]

    def put(self, key: tuple[int, str | None, bytes], document: DocumentNode, nodes: int) -> None:
        self.entries[key] = (document, nodes)  # holding the document keeps its id unique
        if len(self.entries) > self.size:
            self.entries.popitem(last=False)


ESTIMATES = _Estimates()


def estimate_nodes(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: dict[str, Any] | None,
) -> int:
    key = ESTIMATES.key(document, operation_name, variables)
    if key is not None and (known := ESTIMATES.get(key, document)) is not None:
        return known
    nodes = _estimate(schema, document, operation_name, variables)
    if key is not None:
        ESTIMATES.put(key, document, nodes)
    return nodes


def _estimate(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: dict[str, Any] | None,
) -> int:
    operation = get_operation_ast(document, operation_name)
    root = schema.get_root_type(operation.operation) if operation is not None else None
    if not isinstance(operation, OperationDefinitionNode) or root is None:
        return 0
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables or {})
    if isinstance(coerced, list):
        return 0  # the variables do not coerce: the executor refuses the operation

    def walk(selection_set: SelectionSetNode | None, parent: Any) -> int:
        """Nodes under `selection_set` for one `parent` node: the estimate is linear in the
        number of parents, so a fragment's is computed once and multiplied."""
        if selection_set is None:
            return 0
        VISITS["cost"] += 1
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                fields = getattr(parent, "fields", {})
                definition = fields.get(selection.name.value)
                if definition is None:  # __typename and introspection
                    continue
                returns = get_named_type(definition.type)
                multiplier = _multiplier(selection, definition, returns.name, coerced)
                nodes = 1 if multiplier is None else multiplier
                total += (0 if multiplier is None else nodes) + nodes * walk(
                    selection.selection_set, returns
                )
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = schema.get_type(condition.name.value) if condition else parent
                total += walk(selection.selection_set, target)
            elif isinstance(selection, FragmentSpreadNode):
                total += fragments.get(selection.name.value) or 0
        return total

    fragments: FragmentResults[int] = FragmentResults(
        document,
        lambda fragment: walk(
            fragment.selection_set, schema.get_type(fragment.type_condition.name.value)
        ),
        0,  # cycles are a validation error
    )
    return walk(operation.selection_set, root)


def points(nodes: int, operation: OperationType | None, mutation_fields: int = 0) -> int:
    """Rate-limit points: one per hundred nodes, at least one; each mutation field costs one."""
    return max(1, math.ceil(nodes / NODES_PER_POINT)) + (
        mutation_fields if operation == OperationType.MUTATION else 0
    )
