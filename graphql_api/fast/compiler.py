"""Compile a validated query into one SQL statement that builds its `data` as JSON.

Every field is compiled from its description (graphql_api/schema/describe.py), the same one its
resolver is derived from: row sources are the repositories' own statements (scope, soft-delete
rules, filters, keyset pagination), every encoding comes from db/, and so does the SQL that nests
them into JSON (db/json_sql.py): the compiler only chooses what to nest where. Role checks become
`CASE ... ELSE graphql_refused(...)` (json_sql.guarded): where one fails, the statement raises
and the resolvers answer (and report the error). A field without a description the compiler
knows raises Unsupported, and the resolvers answer instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLField,
    GraphQLIncludeDirective,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSkipDirective,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionNode,
    get_named_type,
)
from graphql.execution.values import (
    VariableValues,
    get_argument_values,
    get_directive_values,
    get_variable_values,
)
from graphql.utilities import get_operation_ast
from sqlalchemy import Select, select
from strawberry.types.arguments import convert_arguments

from db.encodings import enum_sql, iso_sql, sql_literal
from db.errors import DomainError
from db.ids import global_id_of_sql, global_id_sql
from db.json_sql import (
    JSON_NULL,
    Params,
    column_of,
    column_sql,
    guarded,
    json_list,
    json_object,
    json_select,
    json_single,
    ordered_unnest,
    row_alias,
    scalar_subquery,
    text_root,
    unnested_id,
)
from db.models import Membership, User
from db.repositories import MembershipRepository, PageArgs, WorkspaceRepository
from db.repositories.base import Scope
from db.repositories.keyset import KeysetOrder, PageSql, count_sql, paginate_statement
from db.repositories.workspaces import WORKSPACE_ORDER
from db.session import DbSession
from graphql_api import policy
from graphql_api.fast import Unsupported
from graphql_api.resolvers.nodes import MAX_NODES, NODE_TYPES
from graphql_api.schema.describe import (
    Children,
    Column,
    Computed,
    Description,
    GlobalId,
    Lookup,
    Reference,
    Related,
    Root,
    description_of,
)
from graphql_api.schema.relay import from_global_id

Fields = dict[str, list[FieldNode]]


class Compiler:
    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation_name: str | None,
        variables: dict[str, Any] | None,
        viewer_id: uuid.UUID,
        db: DbSession,
    ) -> None:
        self.schema = schema
        self.document = document
        self.operation_name = operation_name
        self.raw_variables = variables or {}
        self.viewer_id = viewer_id
        self.scope = Scope(viewer_id)
        self._lists = 0  # how many lists the field being compiled is inside
        self.db = db
        self.params = Params()
        self._aliases = 0
        # (alias, column) -> the alias of the enclosing row whose id that column holds
        self._parents: dict[tuple[str, str], str] = {}
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }

    # -- entry ---------------------------------------------------------------------------
    @classmethod
    def within(
        cls,
        schema: GraphQLSchema,
        operation: OperationDefinitionNode,
        fragments: dict[str, FragmentDefinitionNode],
        variables: VariableValues,
        viewer_id: uuid.UUID,
        db: DbSession,
    ) -> Compiler:
        """A compiler for selections inside an operation being executed (a mutation's payload,
        read after its write: graphql_api/fast/payloads.py), with its variables as coerced."""
        document = DocumentNode(definitions=(operation, *fragments.values()))
        compiler = cls(schema, document, None, None, viewer_id, db)
        compiler.variables = variables
        return compiler

    def compile(self) -> tuple[str, list[Any]]:
        op = get_operation_ast(self.document, self.operation_name)
        if not isinstance(op, OperationDefinitionNode) or op.operation != OperationType.QUERY:
            raise Unsupported("only queries")
        coerced = get_variable_values(
            self.schema, op.variable_definitions or (), self.raw_variables
        )
        if isinstance(coerced, list):
            raise Unsupported("variable errors are reported by the resolvers")
        self.variables = coerced
        root = self.schema.query_type
        assert root is not None
        pairs = [
            (key, self.root_field(root, nodes))
            for key, nodes in self.collect(op.selection_set.selections, "Query").items()
        ]
        return text_root(json_object(pairs)), self.params.values

    # -- selections ------------------------------------------------------------------------
    def alias(self) -> str:
        self._aliases += 1
        return row_alias(self._aliases)

    def applies(self, condition: str | None, type_name: str) -> bool:
        if condition is None or condition == type_name:
            return True
        gql_type = self.schema.get_type(type_name)
        return isinstance(gql_type, GraphQLObjectType) and any(
            i.name == condition for i in gql_type.interfaces
        )

    def collect(
        self, selections: Iterable[SelectionNode], type_name: str, into: Fields | None = None
    ) -> Fields:
        fields: Fields = {} if into is None else into
        for selection in selections:
            if not self.included(selection):
                continue
            if isinstance(selection, FieldNode):
                key = (selection.alias or selection.name).value
                fields.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = (
                    selection.type_condition.name.value if selection.type_condition else None
                )
                if self.applies(condition, type_name):
                    self.collect(selection.selection_set.selections, type_name, fields)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments[selection.name.value]
                if self.applies(fragment.type_condition.name.value, type_name):
                    self.collect(fragment.selection_set.selections, type_name, fields)
        return fields

    def included(self, node: SelectionNode) -> bool:
        """@skip and @include as the executor evaluates them when it collects fields (skip wins);
        any other directive is not compiled."""
        for directive in node.directives or ():
            if directive.name.value not in (
                GraphQLSkipDirective.name,
                GraphQLIncludeDirective.name,
            ):
                raise Unsupported(f"directive @{directive.name.value}")
        skip = get_directive_values(GraphQLSkipDirective, node, self.variables)
        if skip and skip["if"]:
            return False
        include = get_directive_values(GraphQLIncludeDirective, node, self.variables)
        return not (include and not include["if"])

    @staticmethod
    def sub(nodes: list[FieldNode]) -> list[SelectionNode]:
        return [s for n in nodes if n.selection_set for s in n.selection_set.selections]

    # -- what descriptions may use (describe.Sql) -----------------------------------------
    def embed(self, stmt: Select[Any]) -> str:
        return self.params.embed(stmt)

    def param(self, value: Any) -> str:
        return self.params.add(value)

    @staticmethod
    def ref(alias: str, column: str) -> Any:
        return column_of(alias, column)

    def parent_row(self, alias: str, column: str) -> str | None:
        return self._parents.get((alias, column))

    # -- objects ---------------------------------------------------------------------------
    def definition(self, type_name: str, name: str) -> GraphQLField:
        gql_type = self.schema.get_type(type_name)
        assert isinstance(gql_type, GraphQLObjectType)
        definition: GraphQLField | None = gql_type.fields.get(name)
        if definition is None:
            raise Unsupported(f"{type_name}.{name}")  # introspection
        return definition

    def python_args(self, definition: GraphQLField, nodes: list[FieldNode]) -> dict[str, Any]:
        """The field's arguments as its resolver receives them (Python names and values)."""
        given = get_argument_values(definition, nodes[0], self.variables)
        strawberry_field = definition.extensions["strawberry-definition"]
        strawberry_schema = self.schema._strawberry_schema  # type: ignore[attr-defined]
        return convert_arguments(
            given,
            strawberry_field.arguments,
            scalar_registry=strawberry_schema.schema_converter.scalar_registry,
            config=strawberry_schema.config,
        )

    def object(self, type_name: str, alias: str, selections: list[SelectionNode]) -> str:
        pairs = []
        for key, nodes in self.collect(selections, type_name).items():
            name = nodes[0].name.value
            if name == "__typename":
                pairs.append((key, sql_literal(type_name)))
            else:
                pairs.append((key, self.field(type_name, alias, nodes)))
        return json_object(pairs)

    def field(self, type_name: str, a: str, nodes: list[FieldNode]) -> str:
        """One field of the row aliased `a`, from its description."""
        definition = self.definition(type_name, nodes[0].name.value)
        spec: Description | None = description_of(definition)
        sel = self.sub(nodes)
        match spec:
            case Column(attr):
                named = get_named_type(definition.type)
                if isinstance(named, GraphQLEnumType):
                    return enum_sql(column_sql(a, attr))
                if named.name == "DateTime":
                    return iso_sql(column_sql(a, attr))
                return column_sql(a, attr)
            case GlobalId(attr, None):
                return global_id_sql(type_name, column_sql(a, attr))
            case GlobalId(attr, str() as type_attr):
                return global_id_of_sql(column_sql(a, type_attr), column_sql(a, attr))
            case Computed(sql):
                return sql(self, a)
            case Reference(target, column, repository):
                scope = self.scope if self._lists else replace(self.scope, one_row=True)
                repo = repository(self.db, scope)
                return self.one(
                    target, repo.select().where(repo.model.id == self.ref(a, column)), sel
                )
            case Lookup(target, repository, statement):
                args = self.python_args(definition, nodes)
                stmt = statement(repository(self.db, self.scope), self.ref(a, "id"), args)
                return self.one(target, stmt, sel)
            case Related(target, statement, parent, _):
                alias = self.alias()
                inner = self.params.embed(statement().where(parent == self.ref(a, "id")))
                with self.in_list():
                    return json_list(self.object(target, alias, sel), inner, alias)
            case Children():
                return self.children(spec, a, self.python_args(definition, nodes), sel)
        raise Unsupported(f"{type_name}.{nodes[0].name.value}")

    @contextmanager
    def in_list(self) -> Iterator[None]:
        """Fields compiled inside run once per item of a list."""
        self._lists += 1
        try:
            yield
        finally:
            self._lists -= 1

    def one(self, type_name: str, stmt: Select[Any], selections: list[SelectionNode]) -> str:
        """At most one row of `stmt` as an object, or JSON null."""
        alias = self.alias()
        inner = self.params.embed(stmt)
        return json_single(self.object(type_name, alias, selections), inner, alias)

    def children(
        self, spec: Children, a: str, args: dict[str, Any], sel: list[SelectionNode]
    ) -> str:
        repo = spec.repository(self.db, Scope(self.viewer_id, within_parent=True))
        parent = self.ref(a, "id")
        try:
            spec.variant(args)  # validates the arguments, as the resolver does first
            stmt = spec.statement(repo, args).where(spec.parent == parent)
        except DomainError as exc:
            raise Unsupported("the resolvers report invalid arguments") from exc
        total = spec.total[0](repo, args, parent) if spec.total is not None else None
        answer = self.connection(
            spec.target, stmt, spec.order(args), spec.page(args), sel, total, (spec.parent.key, a)
        )
        action = spec.guard(args)
        if action is None:
            return answer
        allowed = select(
            MembershipRepository.role_of(self.viewer_id, self.ref(a, spec.workspace_attr))
            .where(Membership.role.in_(policy.roles_allowed(action)))
            .exists()
        )
        return guarded(self.embed(allowed), answer, f"{action.value} not allowed")

    # -- connections -------------------------------------------------------------------------
    def connection(
        self,
        node_type: str,
        stmt: Select[Any],
        order: KeysetOrder,
        args: PageArgs,
        selections: list[SelectionNode],
        total: Select[Any] | None = None,
        parent: tuple[str, str] | None = None,
    ) -> str:
        """`total` is the repository's scalar statement for totalCount when it has one (task
        counters); otherwise the rows of `stmt` are counted. `parent`: (the column of each row
        that holds the parent's id, the parent row's alias), for parent_row."""
        try:
            args = args.validated()
            paginated = paginate_statement(stmt, order, args)
        except DomainError as exc:
            raise Unsupported("the resolvers report invalid page arguments") from exc
        fields = self.collect(selections, f"{node_type}Connection")
        page = PageSql(order, args, self.alias())
        if parent is not None:
            self._parents[(page.alias, parent[0])] = parent[1]
        pairs: list[tuple[str, str]] = []
        uses_rows = False
        for key, nodes in fields.items():
            name = nodes[0].name.value
            sub = self.sub(nodes)
            if name == "__typename":
                pairs.append((key, sql_literal(f"{node_type}Connection")))
            elif name == "totalCount":
                counted = total if total is not None else stmt
                embedded = self.params.embed(counted)
                pairs.append(
                    (key, scalar_subquery(embedded) if total is not None else count_sql(embedded))
                )
            elif name == "nodes":
                uses_rows = True
                with self.in_list():
                    items = self.object(node_type, page.alias, sub)
                pairs.append((key, page.items_json(items)))
            elif name == "edges":
                uses_rows = True
                edge_pairs = []
                for ekey, enodes in self.collect(sub, f"{node_type}Edge").items():
                    ename = enodes[0].name.value
                    if ename == "cursor":
                        edge_pairs.append((ekey, page.cursor()))
                    elif ename == "node":
                        with self.in_list():
                            item = self.object(node_type, page.alias, self.sub(enodes))
                        edge_pairs.append((ekey, item))
                    elif ename == "__typename":
                        edge_pairs.append((ekey, sql_literal(f"{node_type}Edge")))
                    else:
                        raise Unsupported(f"edge field {ename}")
                pairs.append((key, page.items_json(json_object(edge_pairs))))
            elif name == "pageInfo":
                uses_rows = True
                info = []
                for pkey, pnodes in self.collect(sub, "PageInfo").items():
                    pname = pnodes[0].name.value
                    if pname == "__typename":
                        info.append((pkey, sql_literal("PageInfo")))
                        continue
                    part = {
                        "hasNextPage": page.has_next_page,
                        "hasPreviousPage": page.has_previous_page,
                        "startCursor": page.start_cursor,
                        "endCursor": page.end_cursor,
                    }.get(pname)
                    if part is None:
                        raise Unsupported(f"pageInfo field {pname}")
                    info.append((pkey, part()))
                pairs.append((key, json_object(info)))
            else:
                raise Unsupported(f"connection field {name}")
        obj = json_object(pairs)
        if not uses_rows:
            return json_select(obj)
        return json_select(obj, page.rows(self.params.embed(paginated)))

    # -- roots -------------------------------------------------------------------------------
    def root_field(self, root: GraphQLObjectType, nodes: list[FieldNode]) -> str:
        name = nodes[0].name.value
        if name == "__typename":
            return sql_literal("Query")
        definition = root.fields.get(name)  # not there: introspection (__schema, __type)
        spec = description_of(definition) if definition is not None else None
        if definition is None or not isinstance(spec, Root):
            raise Unsupported(f"Query.{name}")
        sel = self.sub(nodes)
        args = self.python_args(definition, nodes)
        match spec.kind:
            case "viewer":
                return self.one("User", select(User).where(User.id == self.viewer_id), sel)
            case "workspace":
                return self.one(
                    "Workspace",
                    WorkspaceRepository(self.db, self.scope).by_slug(args["slug"]),
                    sel,
                )
            case "workspaces":
                stmt = WorkspaceRepository(self.db, self.scope).select()
                page = PageArgs(args["first"], args["after"])
                return self.connection("Workspace", stmt, WORKSPACE_ORDER, page, sel)
            case "node":
                return self.node(str(args["id"]), sel)
            case "nodes":
                return self.nodes([str(i) for i in args["ids"]], sel)
        raise Unsupported(f"Query.{name}")

    def nodes(self, ids: list[str], sel: list[SelectionNode]) -> str:
        """nodes(ids:) in the order of `ids`, null for each missing or invisible one: the ids
        are parameters (one unnest), and each type's lookup appears once, whatever the count."""
        if len(ids) > MAX_NODES:
            raise Unsupported("too many ids: the resolvers report the error")
        parsed = [from_global_id(i) for i in ids]
        known = [p if p is not None and p[0] in NODE_TYPES else None for p in parsed]
        i = self.alias()
        row = unnested_id(i)
        with self.in_list():
            answers = [
                (kind, self.one(kind, self.lookup(kind, row), sel))
                for kind in sorted({p[0] for p in known if p is not None})
            ]
        kinds = self.param([p[0] if p is not None else "" for p in known])
        uuids = self.param([p[1] if p is not None else None for p in known])
        return ordered_unnest(i, kinds, uuids, answers)

    def lookup(self, type_name: str, id: Any) -> Select[Any]:
        """The row an id of `type_name` finds, as resolvers/nodes.py NODE_TYPES defines it."""
        kind = NODE_TYPES[type_name]
        repo = kind.repository(self.db, self.scope)
        stmt = repo.select().where(repo.model.id == id)
        return stmt if kind.visible_sql is None else stmt.where(kind.visible_sql(repo))

    def node(self, gid: str, sel: list[SelectionNode]) -> str:
        """node(id:) as the resolver finds it (resolvers/nodes.py NODE_TYPES, in SQL)."""
        parsed = from_global_id(gid)
        if parsed is None or parsed[0] not in NODE_TYPES:
            return JSON_NULL
        type_name, id = parsed
        return self.one(type_name, self.lookup(type_name, id), sel)
