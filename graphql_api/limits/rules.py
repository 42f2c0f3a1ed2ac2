"""Validation rules for the document limits, made once per limit value (so that strawberry's
validation cache, keyed by the rules, keeps hitting)."""

from __future__ import annotations

from functools import cache
from typing import Any

from graphql import (
    DirectiveNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions.max_aliases import create_validator as max_aliases_rule


def _error(message: str, code: str = "BAD_REQUEST") -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


def _depth(
    selection_set: SelectionSetNode | None, fragments: dict[str, Any], seen: frozenset[str]
) -> int:
    if selection_set is None:
        return 0
    deepest = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.name.value.startswith("__"):
                continue  # introspection is limited on its own
            deepest = max(deepest, 1 + _depth(selection.selection_set, fragments, seen))
        elif isinstance(selection, InlineFragmentNode):
            deepest = max(deepest, _depth(selection.selection_set, fragments, seen))
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in fragments and name not in seen:
                deepest = max(
                    deepest, _depth(fragments[name].selection_set, fragments, seen | {name})
                )
    return deepest


@cache
def max_depth_rule(limit: int) -> type[ValidationRule]:
    class MaxDepth(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            document = context.document
            fragments = {
                d.name.value: d
                for d in document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            for definition in document.definitions:
                if isinstance(definition, OperationDefinitionNode):
                    depth = _depth(definition.selection_set, fragments, frozenset())
                    if depth > limit:
                        context.report_error(
                            _error(f"the query is {depth} levels deep; the limit is {limit}")
                        )

    return MaxDepth


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
def max_aliases(limit: int) -> type[ValidationRule]:
    return max_aliases_rule(limit)


@cache
def rules(
    depth: int, aliases: int, directives: int, introspection: bool
) -> tuple[type[ValidationRule], ...]:
    chosen = [max_depth_rule(depth), max_aliases(aliases), max_directives_rule(directives)]
    if not introspection:
        chosen.append(NoSchemaIntrospectionCustomRule)
    return tuple(chosen)
