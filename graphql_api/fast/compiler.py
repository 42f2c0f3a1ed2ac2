"""Compile a validated query into one SQL statement that builds its `data` as JSON.

Row sources are the repositories' own statements (scope, soft-delete rules, filters, keyset
pagination), embedded as SQL; the compiler only adds the JSON shape around them. Whatever it does
not know raises Unsupported, and the resolvers answer instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLIncludeDirective,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSkipDirective,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionNode,
)
from graphql.execution.values import (
    get_argument_values,
    get_directive_values,
    get_variable_values,
)
from graphql.utilities import get_operation_ast
from sqlalchemy import Select, literal_column, select

from db.encodings import enum_sql, iso_sql, sql_literal, task_identifier_sql
from db.errors import DomainError
from db.ids import global_id_sql
from db.models import Comment, Label, Membership, Project, Task, TaskLabel, User, Workspace
from db.repositories import (
    CommentRepository,
    LabelRepository,
    MembershipRepository,
    PageArgs,
    ProjectRepository,
    TaskRepository,
    UserRepository,
    WorkspaceRepository,
)
from db.repositories.base import Scope
from db.repositories.comments import COMMENT_ORDER
from db.repositories.keyset import KeysetOrder, paginate_statement
from db.repositories.labels import LABEL_ORDER
from db.repositories.projects import PROJECT_ORDER
from db.repositories.tasks import TASK_ORDERS
from db.repositories.workspaces import MEMBERSHIP_ORDER, WORKSPACE_ORDER
from db.session import DbSession
from graphql_api import policy
from graphql_api.fast.sql import Params, Unsupported, json_object
from graphql_api.resolvers.nodes import MAX_NODES
from graphql_api.schema.filters import TaskFilterInput, task_filter
from graphql_api.schema.relay import from_global_id

Fields = dict[str, list[FieldNode]]

# Scalar fields: (type, field) -> SQL over the row alias.
SCALARS: dict[str, dict[str, Callable[[str], str]]] = {
    "User": {
        "id": lambda a: global_id_sql("User", f"{a}.id"),
        "email": lambda a: f"{a}.email",
        "displayName": lambda a: f"{a}.display_name",
        "createdAt": lambda a: iso_sql(f"{a}.created_at"),
    },
    "Workspace": {
        "id": lambda a: global_id_sql("Workspace", f"{a}.id"),
        "name": lambda a: f"{a}.name",
        "slug": lambda a: f"{a}.slug",
        "createdAt": lambda a: iso_sql(f"{a}.created_at"),
    },
    "Membership": {
        "role": lambda a: enum_sql(f"{a}.role"),
        "createdAt": lambda a: iso_sql(f"{a}.created_at"),
    },
    "Project": {
        "id": lambda a: global_id_sql("Project", f"{a}.id"),
        "key": lambda a: f"{a}.key",
        "name": lambda a: f"{a}.name",
        "description": lambda a: f"{a}.description",
        "archivedAt": lambda a: iso_sql(f"{a}.archived_at"),
        "createdAt": lambda a: iso_sql(f"{a}.created_at"),
        "updatedAt": lambda a: iso_sql(f"{a}.updated_at"),
        "version": lambda a: f"{a}.version",
    },
    "Task": {
        "id": lambda a: global_id_sql("Task", f"{a}.id"),
        "number": lambda a: f"{a}.number",
        "identifier": lambda a: task_identifier_sql(
            f"(SELECT p.key FROM projects p WHERE p.id = {a}.project_id)", f"{a}.number"
        ),
        "title": lambda a: f"{a}.title",
        "description": lambda a: f"{a}.description",
        "status": lambda a: enum_sql(f"{a}.status"),
        "priority": lambda a: enum_sql(f"{a}.priority"),
        "dueAt": lambda a: iso_sql(f"{a}.due_at"),
        "createdAt": lambda a: iso_sql(f"{a}.created_at"),
        "updatedAt": lambda a: iso_sql(f"{a}.updated_at"),
        "deletedAt": lambda a: iso_sql(f"{a}.deleted_at"),
        "version": lambda a: f"{a}.version",
    },
    "Label": {
        "id": lambda a: global_id_sql("Label", f"{a}.id"),
        "name": lambda a: f"{a}.name",
        "color": lambda a: f"{a}.color",
        "createdAt": lambda a: iso_sql(f"{a}.created_at"),
    },
    "Comment": {
        "id": lambda a: global_id_sql("Comment", f"{a}.id"),
        "body": lambda a: f"{a}.body",
        "createdAt": lambda a: iso_sql(f"{a}.created_at"),
        "updatedAt": lambda a: iso_sql(f"{a}.updated_at"),
        "version": lambda a: f"{a}.version",
    },
}


def _ref(alias: str, column: str) -> Any:
    return literal_column(f"{alias}.{column}")


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
        self.db = db
        self.params = Params()
        self._aliases = 0
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }

    # -- entry ---------------------------------------------------------------------------
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
        return f"SELECT {json_object(pairs)}::text", self.params.values

    # -- selections ------------------------------------------------------------------------
    def alias(self) -> str:
        self._aliases += 1
        return f"x{self._aliases}"

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

    def args(self, parent: str, nodes: list[FieldNode]) -> dict[str, Any]:
        gql_type = self.schema.get_type(parent)
        assert isinstance(gql_type, GraphQLObjectType)
        field_def = gql_type.fields[nodes[0].name.value]
        return get_argument_values(field_def, nodes[0], self.variables)

    # -- objects ---------------------------------------------------------------------------
    def object(self, type_name: str, alias: str, selections: list[SelectionNode]) -> str:
        pairs = []
        scalars = SCALARS.get(type_name, {})
        for key, nodes in self.collect(selections, type_name).items():
            name = nodes[0].name.value
            if name == "__typename":
                pairs.append((key, sql_literal(type_name)))
            elif name in scalars:
                pairs.append((key, scalars[name](alias)))
            else:
                pairs.append((key, self.relation(type_name, name, alias, nodes)))
        return json_object(pairs)

    def one(self, type_name: str, stmt: Select[Any], selections: list[SelectionNode]) -> str:
        """At most one row of `stmt` as an object, or JSON null."""
        alias = self.alias()
        inner = self.params.embed(stmt)
        return f"(SELECT {self.object(type_name, alias, selections)} FROM ({inner}) AS {alias})"

    def user(self, column: str, nodes: list[FieldNode]) -> str:
        """A referenced user, null when not visible to the viewer (as the users loader does)."""
        stmt = UserRepository(self.db, self.scope).select().where(User.id == literal_column(column))
        return self.one("User", stmt, self.sub(nodes))

    def relation(self, parent: str, name: str, a: str, nodes: list[FieldNode]) -> str:
        sel = self.sub(nodes)
        db = self.db
        stmt: Select[Any]
        match parent, name:
            case "Workspace", "viewerRole":
                viewer = self.params.add(self.viewer_id)
                return (
                    f"(SELECT m.role FROM memberships m "
                    f"WHERE m.workspace_id = {a}.id AND m.user_id = {viewer})"
                )
            case "Workspace", "members":
                args = self.args(parent, nodes)
                stmt = (
                    MembershipRepository(db)
                    .select()
                    .where(Membership.workspace_id == _ref(a, "id"))
                )
                return self.connection(
                    "Membership",
                    stmt,
                    MEMBERSHIP_ORDER,
                    PageArgs(args["first"], args["after"]),
                    sel,
                )
            case "Workspace", "projects":
                args = self.args(parent, nodes)
                stmt = ProjectRepository(db).select().where(Project.workspace_id == _ref(a, "id"))
                if not args["includeArchived"]:
                    stmt = stmt.where(Project.archived_at.is_(None))
                return self.connection(
                    "Project", stmt, PROJECT_ORDER, PageArgs(args["first"], args["after"]), sel
                )
            case "Workspace", "project":
                key = str(self.args(parent, nodes)["key"]).upper()
                stmt = (
                    ProjectRepository(db)
                    .select()
                    .where(Project.workspace_id == _ref(a, "id"), Project.key == key)
                )
                return self.one("Project", stmt, sel)
            case "Workspace", "labels":
                args = self.args(parent, nodes)
                stmt = LabelRepository(db).select().where(Label.workspace_id == _ref(a, "id"))
                return self.connection(
                    "Label", stmt, LABEL_ORDER, PageArgs(args["first"], args["after"]), sel
                )
            case "Membership", "user":
                return self.user(f"{a}.user_id", nodes)
            case "Project", "workspace":
                return self.one(
                    "Workspace",
                    select(Workspace).where(Workspace.id == _ref(a, "workspace_id")),
                    sel,
                )
            case "Project", "tasks":
                return self.tasks(a, self.args(parent, nodes), sel)
            case "Task", "assignee":
                return self.user(f"{a}.assignee_id", nodes)
            case "Task", "createdBy":
                return self.user(f"{a}.created_by_id", nodes)
            case "Task", "project":
                return self.one(
                    "Project", select(Project).where(Project.id == _ref(a, "project_id")), sel
                )
            case "Task", "labels":
                alias = self.alias()
                inner = self.params.embed(
                    TaskRepository.labels_select().where(TaskLabel.task_id == _ref(a, "id"))
                )
                obj = self.object("Label", alias, sel)
                return f"coalesce((SELECT json_agg({obj}) FROM ({inner}) AS {alias}), '[]'::json)"
            case "Task", "comments":
                args = self.args(parent, nodes)
                stmt = CommentRepository(db).select().where(Comment.task_id == _ref(a, "id"))
                return self.connection(
                    "Comment", stmt, COMMENT_ORDER, PageArgs(args["first"], args["after"]), sel
                )
            case "Comment", "author":
                return self.user(f"{a}.author_id", nodes)
        raise Unsupported(f"{parent}.{name}")

    def tasks(self, project_alias: str, args: dict[str, Any], sel: list[SelectionNode]) -> str:
        given = args.get("filter")
        try:
            f = task_filter(TaskFilterInput(**_snake(given)) if given is not None else None)
        except DomainError as exc:
            raise Unsupported("the resolvers report invalid filters") from exc
        if f.include_deleted:
            raise Unsupported("includeDeleted needs a role check")
        order_arg = args.get("orderBy") or {}
        field = order_arg.get("field")
        direction = order_arg.get("direction")
        order = TASK_ORDERS[
            (field.value if field else "CREATED_AT", bool(direction and direction.value == "DESC"))
        ]
        repo = TaskRepository(self.db)
        project_id = _ref(project_alias, "id")
        stmt = repo.filtered(f).where(Task.project_id == project_id)
        page = PageArgs(args["first"], args["after"], args["last"], args["before"])
        total = repo.total_in_project(f, project_id)
        return self.connection("Task", stmt, order, page, sel, total)

    # -- connections -------------------------------------------------------------------------
    def connection(
        self,
        node_type: str,
        stmt: Select[Any],
        order: KeysetOrder,
        args: PageArgs,
        selections: list[SelectionNode],
        total: Select[Any] | None = None,
    ) -> str:
        """`total` is the repository's scalar statement for totalCount when it has one (task
        counters); otherwise the rows of `stmt` are counted."""
        try:
            args = args.validated()
            paginated = paginate_statement(stmt, order, args)
        except DomainError as exc:
            raise Unsupported("the resolvers report invalid page arguments") from exc
        fields = self.collect(selections, f"{node_type}Connection")
        x = self.alias()
        size = args.size
        backwards = args.backwards
        in_page = f"FILTER (WHERE {x}._n <= {size})"
        agg_order = f"{x}._n DESC" if backwards else f"{x}._n"
        more = f"(count(*) > {size})"
        has_next = ("true" if args.before is not None else "false") if backwards else more
        has_prev = more if backwards else ("true" if args.after is not None else "false")
        pairs: list[tuple[str, str]] = []
        uses_rows = False
        for key, nodes in fields.items():
            name = nodes[0].name.value
            sub = self.sub(nodes)
            if name == "__typename":
                pairs.append((key, sql_literal(f"{node_type}Connection")))
            elif name == "totalCount":
                if total is not None:
                    pairs.append((key, f"({self.params.embed(total)})"))
                else:
                    inner = self.params.embed(stmt)
                    pairs.append((key, f"(SELECT count(*) FROM ({inner}) AS c)"))
            elif name == "nodes":
                uses_rows = True
                obj = self.object(node_type, x, sub)
                pairs.append(
                    (key, f"coalesce(json_agg({obj} ORDER BY {agg_order}) {in_page}, '[]'::json)")
                )
            elif name == "edges":
                uses_rows = True
                edge_pairs = []
                for ekey, enodes in self.collect(sub, f"{node_type}Edge").items():
                    ename = enodes[0].name.value
                    if ename == "cursor":
                        edge_pairs.append((ekey, order.cursor_sql(x)))
                    elif ename == "node":
                        edge_pairs.append((ekey, self.object(node_type, x, self.sub(enodes))))
                    elif ename == "__typename":
                        edge_pairs.append((ekey, sql_literal(f"{node_type}Edge")))
                    else:
                        raise Unsupported(f"edge field {ename}")
                edge = json_object(edge_pairs)
                pairs.append(
                    (key, f"coalesce(json_agg({edge} ORDER BY {agg_order}) {in_page}, '[]'::json)")
                )
            elif name == "pageInfo":
                uses_rows = True
                cursors = f"(array_agg({order.cursor_sql(x)} ORDER BY {agg_order}) {in_page})"
                info = []
                for pkey, pnodes in self.collect(sub, "PageInfo").items():
                    pname = pnodes[0].name.value
                    value = {
                        "hasNextPage": has_next,
                        "hasPreviousPage": has_prev,
                        "startCursor": f"{cursors}[1]",
                        "endCursor": f"{cursors}[array_length({cursors}, 1)]",
                        "__typename": sql_literal("PageInfo"),
                    }.get(pname)
                    if value is None:
                        raise Unsupported(f"pageInfo field {pname}")
                    info.append((pkey, value))
                pairs.append((key, json_object(info)))
            else:
                raise Unsupported(f"connection field {name}")
        obj = json_object(pairs)
        if not uses_rows:
            return f"(SELECT {obj})"
        inner = self.params.embed(paginated)
        rows = (
            f"(SELECT s.*, row_number() OVER (ORDER BY {order.order_by_sql('s', backwards)}) AS _n "
            f"FROM ({inner}) AS s) AS {x}"
        )
        return f"(SELECT {obj} FROM {rows})"

    # -- roots -------------------------------------------------------------------------------
    def root_field(self, root: GraphQLObjectType, nodes: list[FieldNode]) -> str:
        name = nodes[0].name.value
        sel = self.sub(nodes)
        if name == "__typename":
            return sql_literal("Query")
        if name == "viewer":
            return self.one("User", select(User).where(User.id == self.viewer_id), sel)
        if name == "workspace":
            slug = self.args("Query", nodes)["slug"]
            return self.one(
                "Workspace",
                WorkspaceRepository(self.db, self.scope).select().where(Workspace.slug == slug),
                sel,
            )
        if name == "workspaces":
            args = self.args("Query", nodes)
            stmt = WorkspaceRepository(self.db, self.scope).select()
            return self.connection(
                "Workspace", stmt, WORKSPACE_ORDER, PageArgs(args["first"], args["after"]), sel
            )
        if name == "node":
            return self.node(str(self.args("Query", nodes)["id"]), sel)
        if name == "nodes":
            ids = self.args("Query", nodes)["ids"]
            if len(ids) > MAX_NODES:
                raise Unsupported("too many ids: the resolvers report the error")
            # In the order of `ids`, null for each missing or invisible one, as nodes() answers.
            return "json_build_array(" + ", ".join(self.node(str(i), sel) for i in ids) + ")"
        raise Unsupported(f"Query.{name}")

    def node(self, gid: str, sel: list[SelectionNode]) -> str:
        parsed = from_global_id(gid)
        if parsed is None:
            return "null"
        type_name, id = parsed
        repos: dict[str, Any] = {
            "User": UserRepository,
            "Workspace": WorkspaceRepository,
            "Project": ProjectRepository,
            "Label": LabelRepository,
            "Comment": CommentRepository,
            "Task": TaskRepository,
        }
        if type_name == "AuditEvent":
            raise Unsupported("node(AuditEvent) needs a role check")
        if type_name not in repos:
            return "null"
        repo = repos[type_name](self.db, self.scope)
        stmt = repo.select().where(repo.model.id == id)
        # Deleted tasks, and the comments of deleted tasks, only for the roles that may see
        # deleted tasks: policy.sees_task, as node() decides it.
        seeing_deleted = policy.roles_allowed(policy.Action.READ_DELETED)
        if type_name == "Task":
            stmt = stmt.where(TaskRepository(self.db, self.scope).visible_in(seeing_deleted))
        if type_name == "Comment":
            stmt = stmt.where(
                CommentRepository(self.db, self.scope).of_visible_task(seeing_deleted)
            )
        return self.one(type_name, stmt, sel)


_CAMEL = {
    "status": "status",
    "assigneeId": "assignee_id",
    "unassigned": "unassigned",
    "labelIds": "label_ids",
    "dueBefore": "due_before",
    "search": "search",
    "includeDeleted": "include_deleted",
}


def _snake(given: dict[str, Any]) -> dict[str, Any]:
    return {_CAMEL[k]: v for k, v in given.items()}
