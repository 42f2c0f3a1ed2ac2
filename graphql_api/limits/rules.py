"""Validation rules for the document limits, made once per limit value (so that strawberry's
validation cache, keyed by the rules, keeps hitting)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from graphql import (
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from graphql.validation import NoSchemaIntrospectionCustomRule

from graphql_api.limits.fragments import VISITS, FragmentResults


def _error(message: str, code: str = "BAD_REQUEST") -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


@dataclass(frozen=True)
class Shape:
    """What the limits measure of a selection set, with the fragments it spreads expanded:
    fields deep, aliased fields and fragment spreads (a spread counts again each time the
    fragment holding it is spread)."""

    depth: int = 0
    aliases: int = 0
    spreads: int = 0


EMPTY = Shape()


class DocumentShape:
    """The shape of a document's operations, each fragment's walked once."""

    def __init__(self, document: DocumentNode) -> None:
        self.fragments: FragmentResults[Shape] = FragmentResults(
            document, lambda fragment: self.of(fragment.selection_set), EMPTY
        )

    def of(self, selection_set: SelectionSetNode | None) -> Shape:
        if selection_set is None:
            return EMPTY
        VISITS["shape"] += 1
        depth = aliases = spreads = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                inner = self.of(selection.selection_set)
                if not selection.name.value.startswith("__"):  # introspection is limited apart
                    depth = max(depth, 1 + inner.depth)
                aliases += inner.aliases + (selection.alias is not None)
                spreads += inner.spreads
            elif isinstance(selection, InlineFragmentNode):
                inner = self.of(selection.selection_set)
                depth = max(depth, inner.depth)
                aliases += inner.aliases
                spreads += inner.spreads
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value) or EMPTY
                depth = max(depth, fragment.depth)
                aliases += fragment.aliases
                spreads += 1 + fragment.spreads
        return Shape(depth, aliases, spreads)


@cache
def shape_rule(max_depth: int, max_aliases: int, max_spreads: int) -> type[ValidationRule]:
    """Depth per operation; aliases and fragment spreads over the whole document."""

    class ShapeLimits(ValidationRule):
        def enter_document(self, document: DocumentNode, *_: Any) -> None:
            # The first node visited: before the standard rules look at anything, and inside
            # validate()'s guard, which turns a RecursionError into "Validation aborted".
            shape = DocumentShape(document)
            aliases = spreads = 0
            for definition in document.definitions:
                if isinstance(definition, OperationDefinitionNode):
                    operation = shape.of(definition.selection_set)
                    aliases += operation.aliases
                    spreads += operation.spreads
                    if operation.depth > max_depth:
                        self.report_error(
                            _error(
                                f"the query is {operation.depth} levels deep; "
                                f"the limit is {max_depth}"
                            )
                        )
            if aliases > max_aliases:
                self.report_error(_error(f"{aliases} aliases; the limit is {max_aliases}"))
            if spreads > max_spreads:
                self.report_error(
                    _error(
                        f"{spreads} fragment spreads, counting a fragment's spreads each time "
                        f"it is spread; the limit is {max_spreads}"
                    )
                )

    return ShapeLimits


@cache
def max_directives_rule(limit: int) -> type[ValidationRule]:
    class MaxDirectives(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.count = 0

        def enter_directive(self, node: DirectiveNode, *_: Any) -> None:
            self.count += 1
            if self.count == limit + 1:
                self.report_error(_error(f"more than {limit} directives; the limit is {limit}"))

    return MaxDirectives


@cache
def rules(
    depth: int, aliases: int, spreads: int, directives: int, introspection: bool
) -> tuple[type[ValidationRule], ...]:
    chosen = [shape_rule(depth, aliases, spreads), max_directives_rule(directives)]
    if not introspection:
        chosen.append(NoSchemaIntrospectionCustomRule)
    return tuple(chosen)
