"""Strings PostgreSQL cannot store (NUL, unpaired surrogates) are refused at the edge, for every
argument of every operation on every transport, before anything runs: in variables and the
operation name here, in the document's string literals by a validation rule. Without this each
would reach a statement and come back as an INTERNAL driver error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError, StringValueNode, ValidationRule
from strawberry.extensions import SchemaExtension

from db.values import find_unstorable_text, unstorable_text
from graphql_api.errors import ApiError

MESSAGE = "strings may not contain NUL characters or unpaired UTF-16 surrogates"


class StorableStringLiterals(ValidationRule):
    def enter_string_value(self, node: StringValueNode, *_: Any) -> None:
        if unstorable_text(node.value):
            self.report_error(GraphQLError(MESSAGE, node, extensions={"code": "BAD_REQUEST"}))


class StorableStrings(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        ec = self.execution_context
        if find_unstorable_text(ec.variables) or find_unstorable_text(ec.operation_name):
            raise ApiError(MESSAGE, "BAD_REQUEST")
        ec.validation_rules = (*ec.validation_rules, StorableStringLiterals)
        yield
