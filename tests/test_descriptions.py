"""Every field of the schema is described once (graphql_api/schema/describe.py), or says why
only the resolvers answer it; and each description names real columns and relations, so the
compiled fast path and the resolvers read the same things."""

from __future__ import annotations

import typing
from typing import Any

from graphql import GraphQLInterfaceType, GraphQLObjectType
from sqlalchemy import inspect as sa_inspect

from db.base import Base
from graphql_api.schema import schema
from graphql_api.schema.describe import (
    Children,
    Column,
    Computed,
    ConnectionPart,
    Described,
    GlobalId,
    Lookup,
    NotCompiled,
    Reference,
    Related,
    Root,
    description_of,
    reason_for_type,
)

GRAPHQL = schema._schema


def object_types() -> list[GraphQLObjectType]:
    return [
        t
        for name, t in GRAPHQL.type_map.items()
        if isinstance(t, GraphQLObjectType) and not name.startswith("__")
    ]


def model_of(type_name: str) -> type[Base]:
    """The row class an object type wraps: its `_model` annotation."""
    gql_type = GRAPHQL.get_type(type_name)
    origin = gql_type.extensions["strawberry-definition"].origin  # type: ignore[union-attr]
    assert issubclass(origin, Described), type_name
    hint = typing.get_type_hints(origin, include_extras=True)["_model"]
    return typing.get_args(hint)[0]  # type: ignore[no-any-return]


def column_of(model: type[Base], attr: str) -> Any:
    """The mapped column `attr`, which must be the SQL column of the same name (the compiler
    reads `<row alias>.<attr>`)."""
    mapper = sa_inspect(model)
    assert attr in mapper.columns, f"{model.__name__} has no column {attr}"
    assert mapper.columns[attr].name == attr, f"{model.__name__}.{attr} is another SQL name"
    return mapper.columns[attr]


def test_every_field_is_described_or_says_why_not() -> None:
    missing: list[str] = []
    for gql_type in object_types():
        type_reason = reason_for_type(gql_type.name)
        for name, definition in gql_type.fields.items():
            spec = description_of(definition)
            if spec is None and type_reason is None:
                missing.append(f"{gql_type.name}.{name}")
            if isinstance(spec, NotCompiled):
                assert len(spec.reason) > 10, f"{gql_type.name}.{name}: say why"
    assert not missing, f"fields without a description or a reason: {missing}"


def test_descriptions_name_real_columns_types_and_relations() -> None:
    checked = 0
    for gql_type in object_types():
        for name, definition in gql_type.fields.items():
            spec = description_of(definition)
            where = f"{gql_type.name}.{name}"
            if isinstance(spec, Column):
                column_of(model_of(gql_type.name), spec.attr)
            elif isinstance(spec, GlobalId):
                column_of(model_of(gql_type.name), spec.attr)
                if spec.type_attr is not None:
                    column_of(model_of(gql_type.name), spec.type_attr)
            elif isinstance(spec, Reference):
                column_of(model_of(gql_type.name), spec.column)
                assert spec.repository.model is model_of(spec.target), where
            elif isinstance(spec, Lookup):
                assert spec.repository.model is model_of(spec.target), where
            elif isinstance(spec, Related):
                assert GRAPHQL.get_type(spec.target) is not None, where
            elif isinstance(spec, Children):
                assert spec.repository.model is model_of(spec.target), where
                assert spec.parent.class_ is spec.repository.model, where
                node_type = GRAPHQL.get_type(f"{spec.target}Connection")
                assert definition.type.of_type is node_type, where  # type: ignore[attr-defined]
                if spec.guard({}) is not None or spec.workspace_attr != "workspace_id":
                    column_of(model_of(gql_type.name), spec.workspace_attr)
            elif isinstance(spec, Root):
                assert gql_type is GRAPHQL.query_type, where
            elif spec is not None:
                assert isinstance(spec, Computed | ConnectionPart | NotCompiled), where
            checked += spec is not None
    assert checked > 80


def test_the_node_interface_is_implemented_by_described_types_only() -> None:
    node = GRAPHQL.get_type("Node")
    assert isinstance(node, GraphQLInterfaceType)
    for implementation in GRAPHQL.get_implementations(node).objects:
        model_of(implementation.name)


def test_every_node_type_says_what_its_id_finds() -> None:
    """A Node type missing from NODE_TYPES would be null by id on both paths alike (the
    differential test cannot see it)."""
    from graphql_api.resolvers.nodes import NODE_TYPES

    node = GRAPHQL.get_type("Node")
    assert isinstance(node, GraphQLInterfaceType)
    names = {t.name for t in GRAPHQL.get_implementations(node).objects}
    assert names == set(NODE_TYPES)


class _Placeholder(str):
    """Stands for any value of the corpus's world (ids, slugs, accounts): the documents are
    what is read here, not the values."""

    def __new__(cls) -> _Placeholder:
        return super().__new__(cls, "x")

    def __getitem__(self, _: object) -> _Placeholder:  # type: ignore[override]
        return _Placeholder()

    def __getattr__(self, _: str) -> _Placeholder:
        return _Placeholder()


def test_the_differential_corpus_selects_every_described_field() -> None:
    """Every field the compiler answers from a description is in tests/test_fast_path.py's
    corpus, where both paths must give the same answer: a field added without a corpus entry
    fails here."""
    from graphql import TypeInfo, TypeInfoVisitor, Visitor, parse, visit

    from tests.test_fast_path import corpus

    selected: set[tuple[str, str]] = set()

    class Collect(Visitor):
        def enter_field(self, node: Any, *_: Any) -> None:
            parent = type_info.get_parent_type()
            if parent is not None:
                selected.add((parent.name, node.name.value))

    for query, _, _ in corpus(_Placeholder()):  # type: ignore[arg-type]
        type_info = TypeInfo(GRAPHQL)
        visit(parse(query), TypeInfoVisitor(type_info, Collect()))
    compiled = {
        (gql_type.name, name)
        for gql_type in object_types()
        for name, definition in gql_type.fields.items()
        if isinstance(
            description_of(definition),
            Column | GlobalId | Computed | Reference | Lookup | Related | Children | Root,
        )
    }
    missing = sorted(f"{t}.{f}" for t, f in compiled - selected)
    assert not missing, f"described fields no corpus operation selects: {missing}"
