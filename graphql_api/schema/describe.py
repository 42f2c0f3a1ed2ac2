"""Each field of the API, described once, with what every path needs to answer it.

schema/types.py declares every field with one of these descriptions in its strawberry metadata.
From the description alone:
- the resolvers answer the field (graphql_api/resolvers/fields.py, `described`: columns are
  copied from the row by `from_model`, references load through the DataLoaders, connections
  page through the batched connection loader);
- the fast path compiles it into its one SQL statement (graphql_api/fast/compiler.py);
- the cost estimate knows how many nodes it can return (graphql_api/limits/cost.py).
A field the compiler cannot answer says why (`NotCompiled`); tests/test_descriptions.py walks
the schema and fails for a field with neither.

Statements are the repositories' own (db/repositories/), given the field's Python arguments (as
the resolver receives them): both paths filter, scope, order and page with the same SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Protocol, Self

import strawberry
from sqlalchemy import Select
from strawberry.types.field import StrawberryField

from db.repositories import KeysetOrder, PageArgs, Repository
from db.repositories.keyset import DEFAULT_PAGE_SIZE
from graphql_api import policy

METADATA_KEY = "describe"

Args = dict[str, Any]  # a field's arguments by Python name, as its resolver receives them


class Sql(Protocol):
    """What a description's SQL form may use while the compiler builds its statement."""

    viewer_id: Any

    def embed(self, stmt: Select[Any]) -> str: ...

    def param(self, value: Any) -> str: ...

    def ref(self, alias: str, column: str) -> Any: ...

    def parent_row(self, alias: str, column: str) -> str | None:
        """The alias of an enclosing row whose id the row `alias`'s `column` holds, when the
        compiler knows one (the parent of a connection: a project's tasks are in that project):
        its columns are read there instead of looked up again, once per row."""
        ...


# -- scalars ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    """A column of the object's row (the model attribute of the same name), as the field's
    GraphQL type writes it: DateTime in ISO 8601, enums by name, JSON as stored."""

    attr: str


@dataclass(frozen=True)
class GlobalId:
    """The global id of the row `attr` names: of the object itself (type: the object's type),
    or of another row whose type name is in the column `type_attr` (AuditEvent.entityId)."""

    attr: str = "id"
    type_attr: str | None = None


@dataclass(frozen=True)
class Computed:
    """Derived from the row. The Python form is the field's resolver; `sql(sql, alias)` is the
    SQL form over the row alias, built from db/ encodings and repository statements. A unit
    test holds the two to the same answers (tests/test_fast_path.py, tests/test_encodings.py)."""

    sql: Callable[[Sql, str], str]
    # Whether the Python form answers this object without a statement (Task.identifier when
    # whoever made the object knew its project's key): a mutation payload whose selection is
    # all at hand costs no statement (graphql_api/fast/payloads.py).
    at_hand: Callable[[Any], bool] | None = None


# -- objects ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reference:
    """Another object by a key column of this row: null when absent or no longer visible to the
    viewer. Resolved through the by-id DataLoader of `repository`; compiled as its `select()`."""

    target: str
    column: str
    repository: type[Repository[Any]]


@dataclass(frozen=True)
class Lookup:
    """One object found by the field's arguments under this row (Workspace.project(key:)),
    null when there is none: `statement(repository, parent id, args)`."""

    target: str
    repository: type[Repository[Any]]
    statement: Callable[[Any, Any, Args], Select[Any]]


@dataclass(frozen=True)
class Related:
    """A plain list of other objects (Task.labels): `statement()` narrowed to this row by
    `parent`, in its own order; resolved through the DataLoader named `loader`."""

    target: str
    statement: Callable[[], Select[Any]]
    parent: Any
    loader: str


def _every_row(repo: Any, _: Args) -> Select[Any]:
    return repo.select()  # type: ignore[no-any-return]


def _no_variant(_: Args) -> Hashable:
    return ()


def _no_guard(_: Args) -> policy.Action | None:
    return None


@dataclass(frozen=True)
class Children:
    """A Relay connection of the rows of `repository` whose `parent` column is this row's id.

    - `statement(repository, args)`: the rows before paging (filters, soft-delete rules);
    - `order(args)`: the keyset ordering; `page(args)` the page arguments;
    - `variant(args)`: what the statement depends on, so batched loads share pages correctly;
    - `guard(args)`: the action the viewer's role in the parent's workspace (`workspace_attr`
      of the parent row) must allow, or None: FORBIDDEN on both paths otherwise;
    - `total`: (SQL statement for one parent, batched count for many) when totalCount has a
      cheaper source than counting the rows (the task counters).
    """

    target: str
    repository: type[Repository[Any]]
    parent: Any
    order: Callable[[Args], KeysetOrder]
    statement: Callable[[Any, Args], Select[Any]] = _every_row
    variant: Callable[[Args], Hashable] = _no_variant
    guard: Callable[[Args], policy.Action | None] = _no_guard
    workspace_attr: str = "workspace_id"
    total: tuple[Any, Any] | None = None

    @staticmethod
    def page(args: Args) -> PageArgs:
        return PageArgs(args.get("first"), args.get("after"), args.get("last"), args.get("before"))


# -- the Relay plumbing, compiled by the connection builder ----------------------------------
@dataclass(frozen=True)
class ConnectionPart:
    """edges, nodes, pageInfo, totalCount, cursor, node and the PageInfo fields: answered by
    whichever path answers their connection (the compiler's connection builder)."""


# -- roots ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Root:
    """A field of Query, resolved in graphql_api/resolvers/ and compiled by the compiler's root
    builder under `kind`: one of viewer, node, nodes, workspace, workspaces. `returns` is how
    many nodes it can return, for the cost estimate: "one", "page" (a connection: its page
    size) or "ids" (one per id)."""

    kind: str
    returns: str = "one"


def nodes_returned(spec: Description | None, args: Args, connection: bool = False) -> int | None:
    """How many nodes a field returns per parent when it is a list the cost estimate counts
    (connections: their page size; nodes(ids:): one per id), else None. `args` by GraphQL
    name, as the executor will use them. `connection`: count an undescribed field as one."""
    returns = (
        spec.returns
        if isinstance(spec, Root)
        else "page"
        if isinstance(spec, Children) or (spec is None and connection)
        else None
    )
    if returns == "ids" and isinstance(args.get("ids"), list):
        return len(args["ids"])
    if returns != "page":
        return None
    size = args.get("first") if args.get("first") is not None else args.get("last")
    return max(0, size) if isinstance(size, int) else DEFAULT_PAGE_SIZE


@dataclass(frozen=True)
class NotCompiled:
    """Answered by the resolvers only, for the reason given."""

    reason: str


# Whole types that only the resolvers answer, and why: what an operation builds in Python, not
# what a read selects from rows. tests/test_descriptions.py accepts their fields undescribed.
ANSWERED_BY_RESOLVERS: dict[str, str] = {
    "Mutation": "a write: graphql_api/resolvers/ run it inside the operation's transaction",
    "Subscription": "a live stream: graphql_api/events/ runs its selection for each event",
    "TaskEvent": "made for each event by graphql_api/events/ from the event's notification",
    "UserError": "made by the mutation that reports it",
    "AuthPayload": "made by the sign-in mutations (tokens are never stored as such)",
    "LogoutPayload": "made by logout",
}
PAYLOAD_REASON = "made by its mutation; its objects are read back by fast/payloads.py"


def reason_for_type(type_name: str) -> str | None:
    """Why a type's fields are answered by the resolvers only, when they all are."""
    if type_name in ANSWERED_BY_RESOLVERS:
        return ANSWERED_BY_RESOLVERS[type_name]
    return PAYLOAD_REASON if type_name.endswith("Payload") else None


Description = (
    Column
    | GlobalId
    | Computed
    | Reference
    | Lookup
    | Related
    | Children
    | ConnectionPart
    | Root
    | NotCompiled
)


def answered_at_hand(definition: Any) -> tuple[Callable[[Any], bool], ...] | None:
    """How an object answers a field of its own without a statement: () for its columns and
    ids, (test,) for a computed field whose `at_hand(obj)` says when; None when the field needs
    the database (a reference, a list, a connection, a computed field without a test)."""
    spec = description_of(definition)
    if isinstance(spec, Column | GlobalId):
        return ()
    if isinstance(spec, Computed) and spec.at_hand is not None:
        return (spec.at_hand,)
    return None


def description_of(definition: Any) -> Description | None:
    """The description of a field: a graphql-core field (its strawberry definition) or a
    strawberry field."""
    extensions = getattr(definition, "extensions", None) or {}
    strawberry_field = extensions.get("strawberry-definition", definition)
    metadata = getattr(strawberry_field, "metadata", None) or {}
    found: Description | None = metadata.get(METADATA_KEY)
    return found


# -- declaring fields -------------------------------------------------------------------------
def column(attr: str | None = None, *, description: str | None = None) -> Any:
    """A field that is a column of the row (named like the field unless `attr` says)."""
    return _Declared(lambda name: Column(attr or name), description)


def global_id(
    attr: str = "id", *, type_attr: str | None = None, description: str | None = None
) -> Any:
    return strawberry.field(
        description=description, metadata={METADATA_KEY: GlobalId(attr, type_attr)}
    )


def computed(
    sql: Callable[[Sql, str], str],
    *,
    description: str | None = None,
    at_hand: Callable[[Any], bool] | None = None,
) -> Callable[[Callable[..., Any]], StrawberryField]:
    """A computed field: the decorated resolver is its Python form, `sql` its SQL form;
    `at_hand(obj)`: the Python form needs no statement for this object."""

    def declare(resolver: Callable[..., Any]) -> StrawberryField:
        declared: StrawberryField = strawberry.field(
            resolver=resolver,
            description=description,
            metadata={METADATA_KEY: Computed(sql, at_hand)},
        )
        return declared

    return declare


def root(kind: str, returns: str = "one") -> dict[str, Root]:
    """The metadata of a Query field the compiler's root builder answers as `kind`."""
    return {METADATA_KEY: Root(kind, returns)}


def not_compiled(reason: str, **kwargs: Any) -> Any:
    """strawberry.field(...) for a field only the resolvers answer, with the reason why."""
    metadata = {**kwargs.pop("metadata", {}), METADATA_KEY: NotCompiled(reason)}
    return strawberry.field(metadata=metadata, **kwargs)


class _Declared:
    """A column whose attribute defaults to the field's own (Python) name, known only once the
    class body names it: resolved by __set_name__ into a strawberry field."""

    def __init__(self, make: Callable[[str], Description], description: str | None) -> None:
        self.make = make
        self.description = description

    def __set_name__(self, owner: type, name: str) -> None:
        setattr(
            owner,
            name,
            strawberry.field(
                description=self.description, metadata={METADATA_KEY: self.make(name)}
            ),
        )


# -- objects made from rows --------------------------------------------------------------------
class Described:
    """Base of the object types: `from_model(row)` fills every Column and GlobalId field from
    the row and keeps the row as `_model` for the other fields' resolvers."""

    _model: Any
    _copies: tuple[tuple[str, Callable[[Any], Any]], ...]

    @classmethod
    def from_model(cls, row: Any) -> Self:
        copies = cls.__dict__.get("_copies")
        if copies is None:
            copies = cls._copies = _copies(cls)
        return cls(**{name: copy(row) for name, copy in copies}, _model=row)  # type: ignore[call-arg]


def _copies(cls: type) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    type_name = definition.name
    copies: list[tuple[str, Callable[[Any], Any]]] = []
    for f in definition.fields:
        spec = description_of(f)
        if isinstance(spec, Column):
            copies.append((f.python_name, _attr(spec.attr)))
        elif isinstance(spec, GlobalId):
            copies.append((f.python_name, _global_id(type_name, spec)))
    return tuple(copies)


def _attr(name: str) -> Callable[[Any], Any]:
    return lambda row: getattr(row, name)


def _global_id(type_name: str, spec: GlobalId) -> Callable[[Any], Any]:
    from db.ids import global_id as encode

    attr, type_attr = spec.attr, spec.type_attr
    if type_attr is None:
        return lambda row: encode(type_name, getattr(row, attr))
    return lambda row: encode(getattr(row, type_attr), getattr(row, attr))
