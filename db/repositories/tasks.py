from __future__ import annotations

import functools
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, cast

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Insert,
    Select,
    Table,
    Text,
    Uuid,
    any_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    inspect,
    literal,
    literal_column,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, REGCONFIG
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached

from db.errors import Conflict, translate
from db.ids import uuid7
from db.models import AuditEvent, Label, Membership, Project, Role, Task, TaskLabel, TaskStatus
from db.repositories.audit_events import AuditEventRepository
from db.repositories.base import Repository, Scope
from db.repositories.keyset import KeysetOrder, SortKey
from db.repositories.projects import ProjectRepository
from db.repositories.task_counts import (
    answered_by_counters,
    counters_by_project,
    counters_total,
)

_ORDER_COLUMNS = {
    "CREATED_AT": (Task.created_at, "created_at", False),
    "UPDATED_AT": (Task.updated_at, "updated_at", False),
    "DUE_AT": (Task.due_at, "due_at", True),
    "PRIORITY": (Task.priority, "priority", False),
    "NUMBER": (Task.number, "number", False),
}


def task_order(field: str = "CREATED_AT", descending: bool = False) -> KeysetOrder:
    """Every task ordering, with id as the tie-breaker so the order is total."""
    column, attr, nullable = _ORDER_COLUMNS[field]
    direction = "DESC" if descending else "ASC"
    keys = [SortKey(column, attr, descending=descending, nullable=nullable)]
    if field != "NUMBER":  # number is unique within a project already
        keys.append(SortKey(Task.id, "id", descending=descending))
    return KeysetOrder(f"tasks:{field}:{direction}", tuple(keys))


# The Python-side column defaults (status, priority...): an INSERT ... SELECT does not apply them.
_TASK_DEFAULTS = {
    c.name: c.default.arg
    for c in Task.__table__.columns
    if c.default is not None and c.default.is_scalar
}

TASK_ORDERS = {
    (field, desc): task_order(field, desc) for field in _ORDER_COLUMNS for desc in (False, True)
}


@dataclass(frozen=True)
class TaskFilter:
    """What a task list may be narrowed by; hashable, so DataLoaders can batch on it."""

    statuses: tuple[TaskStatus, ...] | None = None
    assignee_id: uuid.UUID | None = None
    unassigned: bool | None = None
    label_ids: tuple[uuid.UUID, ...] | None = None
    due_before: datetime | None = None
    search: str | None = None
    include_deleted: bool = False


@dataclass(frozen=True)
class CreationChecks:
    """What creating a task in a project must know first, read in one statement."""

    project: ProjectRef | None  # as the viewer sees it; None when not visible
    role: Role | None  # the viewer's, in the project's workspace
    assignee_is_member: bool  # of the project's workspace
    live_label_ids: frozenset[uuid.UUID]  # of those asked for: live labels of that workspace


class CreateRefused(Conflict):
    """TaskRepository.create wrote nothing: a check did not hold as it locked the project's
    counter (no such project for the creator, their role, the project archived, the assignee's
    membership or a label). The caller reads creation_checks to say which; this Conflict is
    what is left when they all hold again by then."""


@dataclass(frozen=True)
class ProjectRef:
    """What creating a task needs of its project."""

    id: uuid.UUID
    workspace_id: uuid.UUID
    key: str
    archived_at: datetime | None


_TASKS = cast(Table, Task.__table__)
_PROJECTS = cast(Table, Project.__table__)
_TASK_LABELS = cast(Table, TaskLabel.__table__)
_TASK_ATTRS = [(attr.key, attr.columns[0].name) for attr in inspect(Task).column_attrs]
_new_task = Task.__mapper__.class_manager.new_instance


def _member(user: Any, *roles: Any, hold: bool = False) -> Any:
    """The user is a member of the project's workspace (with one of `roles`, when given).
    `hold`: their membership FOR SHARE until the transaction ends, as MembershipRepository.
    role_for_write holds a writer's (a removal or a role change waits for it; one committed
    meanwhile is seen, on the row's latest version, and the check fails)."""
    where = [Membership.workspace_id == Project.workspace_id, Membership.user_id == user]
    query: Select[Any] = select(literal_column("1")).where(
        *where, *(Membership.role == any_(r) for r in roles)
    )
    return exists(query.with_for_update(read=True) if hold else query)


def _live_labels(ids: Any, column: Any = Label.id) -> Select[Any]:
    """Those of the labels `ids` that are live labels of the project's workspace (`column` of
    them: their ids, or count())."""
    return select(column).where(
        Label.id == any_(ids),
        Label.workspace_id == Project.workspace_id,
        Label.deleted_at.is_(None),
    )


@functools.cache
def _creation_checks() -> Select[Any]:
    """CreationChecks' statement, with bound parameters: project_id, viewer, assignee_id,
    label_ids. The viewer's role is read, not held: the write holds it (_creation)."""
    workspace = Project.workspace_id
    viewer = bindparam("viewer", type_=Uuid())
    role = (
        select(Membership.role)
        .where(Membership.workspace_id == workspace, Membership.user_id == viewer)
        .scalar_subquery()
    )
    is_member = _member(bindparam("assignee_id", type_=Uuid()))
    live = func.array(_live_labels(bindparam("label_ids", type_=ARRAY(Uuid()))).scalar_subquery())
    # The viewer's tenant boundary, with the viewer as a parameter rather than a value (the
    # repository's restrict needs no session).
    projects = ProjectRepository(cast(Any, None), Scope(cast(uuid.UUID, viewer)))
    return projects.restrict(
        select(
            Project.id,
            Project.workspace_id,
            Project.key,
            Project.archived_at,
            role.label("role"),
            is_member.label("is_member"),
            live.label("live"),
        ).where(Project.id == bindparam("project_id", type_=Uuid()))
    )


@functools.cache
def _creation(
    columns: tuple[str, ...], audit_columns: tuple[str, ...], labels: bool, notify: bool
) -> Insert:
    """TaskRepository.create's statement for one shape, with bound parameters new_<column> for
    the task's columns, audit_<column> for the audit row's, project_id, viewer, label_ids,
    notify_channel and notify_payload. The project's workspace and key come from the counter's
    row: the statement needs nothing read before it."""
    table = _TASKS
    assignee = bindparam("new_assignee_id", type_=Uuid())
    live = bindparam("live_label_ids", type_=ARRAY(Uuid()))
    writers = bindparam("writer_roles", type_=ARRAY(Membership.role.type))
    creator = bindparam("new_created_by_id", type_=Uuid())
    still = [  # every check, as the counter row is locked
        Project.archived_at.is_(None),
        or_(assignee.is_(None), _member(assignee)),
        _live_labels(live, func.count()).scalar_subquery() == func.cardinality(live),
        # The creator's role, held until the write commits (in a transaction or alone, where
        # the statement is the whole transaction and a lock in a statement before it would end
        # with that statement). It is the tenant boundary too: a writer is a member.
        or_(writers.is_(None), _member(creator, writers, hold=True)),
    ]
    counter = (
        update(_PROJECTS)
        .where(Project.id == bindparam("project_id", type_=Uuid()), *still)
        # A new task is not a change to the project: its updatedAt (and version) stay.
        .values(task_counter=Project.task_counter + 1, updated_at=Project.updated_at)
        .returning(Project.id, Project.workspace_id, Project.key, Project.task_counter)
        .cte("counter")
    )
    row = select(*(bindparam(f"new_{k}", type_=table.c[k].type) for k in columns))
    returning: list[Any] = [*table.c, select(counter.c.key).scalar_subquery().label("project_key")]
    if notify:  # with the task row: one per task; its workspace is the task's
        announced = func.jsonb_set(
            bindparam("notify_payload", type_=Text).cast(JSONB),
            literal_column("'{workspace}'::text[]"),
            func.to_jsonb(table.c.workspace_id.cast(Text)),
        )
        returning.append(func.pg_notify(bindparam("notify_channel"), announced.cast(Text)))
    stmt = (
        insert(table)
        .from_select(
            [*columns, "project_id", "workspace_id", "number"],
            row.add_columns(counter.c.id, counter.c.workspace_id, counter.c.task_counter),
            include_defaults=False,  # _TASK_DEFAULTS are among the columns
        )
        .returning(*returning)
    )
    if audit_columns:
        audit_table = AuditEvent.__table__
        number = func.jsonb_build_object(
            "number", func.jsonb_build_array(null(), counter.c.task_counter)
        )
        changes = bindparam("audit_changes", type_=JSONB).op("||", return_type=JSONB)(number)
        values: dict[str, Any] = {
            k: bindparam(f"audit_{k}", type_=audit_table.c[k].type) for k in audit_columns
        }
        values["workspace_id"] = counter.c.workspace_id
        stmt = stmt.add_cte(AuditEventRepository.insert_from(counter, changes, values).cte("audit"))
    if labels:
        task_labels = insert(_TASK_LABELS).from_select(
            ["task_id", "label_id", "workspace_id"],
            select(
                bindparam("new_id", type_=Uuid()),
                func.unnest(bindparam("label_ids", type_=ARRAY(Uuid()))),
                counter.c.workspace_id,
            ).select_from(counter),  # no project, no task: no labels either
        )
        stmt = stmt.add_cte(task_labels.cte("labels"))
    return stmt


class TaskRepository(Repository[Task]):
    model: ClassVar[type[Task]] = Task
    entity = "task"

    def visible_in(self, seeing_deleted: Sequence[Role]) -> ColumnElement[bool]:
        """SQL twin of graphql_api.policy.sees_task, beside the tenant scope: live tasks, and
        deleted ones where the viewer's role is one of `seeing_deleted`."""
        if self.scope is None:
            return Task.deleted_at.is_(None)
        seers = select(Membership.workspace_id).where(
            Membership.user_id == self.scope.user_id, Membership.role.in_(seeing_deleted)
        )
        return or_(Task.deleted_at.is_(None), Task.workspace_id.in_(seers))

    def in_project(self, project_id: uuid.UUID, include_deleted: bool = False) -> Select[Any]:
        stmt = self.select().where(Task.project_id == project_id)
        return stmt if include_deleted else stmt.where(Task.deleted_at.is_(None))

    def filtered(self, f: TaskFilter) -> Select[Any]:
        stmt = self.select()
        if not f.include_deleted:
            stmt = stmt.where(Task.deleted_at.is_(None))
        if f.statuses is not None:
            stmt = stmt.where(Task.status.in_(f.statuses))
        if f.assignee_id is not None:
            stmt = stmt.where(Task.assignee_id == f.assignee_id)
        if f.unassigned is True:
            stmt = stmt.where(Task.assignee_id.is_(None))
        elif f.unassigned is False:
            stmt = stmt.where(Task.assignee_id.is_not(None))
        if f.label_ids:
            wanted = set(f.label_ids)
            having_all = (
                select(TaskLabel.task_id)
                .where(TaskLabel.label_id.in_(wanted))
                .group_by(TaskLabel.task_id)
                .having(func.count(func.distinct(TaskLabel.label_id)) == len(wanted))
            )
            stmt = stmt.where(Task.id.in_(having_all))
        if f.due_before is not None:
            stmt = stmt.where(Task.due_at < f.due_before)
        if f.search is not None and f.search.strip():
            query = func.websearch_to_tsquery(literal("english", REGCONFIG), f.search)
            stmt = stmt.where(Task.search_vector.op("@@")(query))
        return stmt

    def total_in_project(self, f: TaskFilter, project_id: Any) -> Select[Any]:
        """A scalar statement: how many tasks of the project `filtered(f)` returns. Summed from
        the project's counters when the filter allows, else counted. The compiled fast path
        embeds it; `count_in_projects` is its batched twin for the resolvers."""
        if answered_by_counters(f):
            return counters_total(f, self.scope, project_id)
        tasks = self.filtered(f).where(Task.project_id == project_id).subquery()
        return select(func.count()).select_from(tasks)

    async def count_in_projects(self, f: TaskFilter, project_ids: Sequence[uuid.UUID]) -> list[int]:
        """How many tasks each project has under `filtered(f)`, in one statement, in the order
        of `project_ids`: from the counters when the filter allows, else counted."""
        if not answered_by_counters(f):
            return await self.count_many(self.filtered(f), Task.project_id, project_ids)
        if not project_ids:
            return []
        rows = await self.db.execute(counters_by_project(f, self.scope, set(project_ids)))
        totals: dict[uuid.UUID, int] = {pid: int(n) for pid, n in rows.all()}  # type: ignore[misc]
        return [totals.get(pid, 0) for pid in project_ids]

    @staticmethod
    def labels_select() -> Select[Any]:
        """Live labels of tasks, by name; callers narrow it to their task ids."""
        return (
            select(Label)
            .join(TaskLabel, TaskLabel.label_id == Label.id)
            .where(Label.deleted_at.is_(None))
            .order_by(Label.name, Label.id)
        )

    async def labels_of(self, task_ids: Sequence[uuid.UUID]) -> list[list[Label]]:
        """Each task's live labels, by name, in one statement."""
        if not task_ids:
            return []
        stmt = self.labels_select().add_columns(TaskLabel.task_id)
        rows = await self.db.execute(stmt.where(TaskLabel.task_id.in_(set(task_ids))))
        groups: dict[uuid.UUID, list[Label]] = defaultdict(list)
        for label, task_id in rows.all():  # type: ignore[misc]
            groups[task_id].append(label)
        return [groups.get(t, []) for t in task_ids]

    async def label_ids(self, task_id: uuid.UUID) -> list[uuid.UUID]:
        return list(
            await self.db.scalars(
                select(TaskLabel.label_id)
                .where(TaskLabel.task_id == task_id)
                .order_by(TaskLabel.label_id)
            )
        )

    async def creation_checks(
        self,
        project_id: uuid.UUID,
        assignee_id: uuid.UUID | None,
        label_ids: Sequence[uuid.UUID],
    ) -> CreationChecks:
        """The project as the viewer sees it, with the viewer's role there, whether the assignee
        is a member and which of the labels are live labels of its workspace: one statement
        instead of four (the resolver decides in what order they fail)."""
        assert self.scope is not None, "a viewer creates tasks"
        params = {
            "project_id": project_id,
            "viewer": self.scope.user_id,
            "assignee_id": assignee_id,
            "label_ids": list(label_ids),
        }
        rows = await self.db.run(_creation_checks(), params)
        if not rows:
            return CreationChecks(None, None, False, frozenset())
        row = rows[0]
        project = ProjectRef(row["id"], row["workspace_id"], row["key"], row["archived_at"])
        return CreationChecks(
            project, row["role"], bool(row["is_member"]), frozenset(row["live"] or ())
        )

    async def create(
        self,
        project_id: uuid.UUID,
        values: dict[str, Any],
        label_ids: Sequence[uuid.UUID] = (),
        *,
        audit: dict[str, Any] | None = None,
        notify: tuple[str, str] | None = None,
        writers: Sequence[Role] | None = None,
    ) -> tuple[Task, str]:
        """A new task in the project with its next number, its labels, and its audit row
        (`audit`: the columns of AuditEventRepository.record but the workspace; its changes get
        the task's number) with the NOTIFY that announces it (`notify`: channel and payload, whose
        "workspace" the statement sets), all in one statement; the task, and its project's key.

        The counter's row lock serialises creates in a project until the transaction ends, so
        what follows it should be short: numbering, inserting the task, its labels and its audit
        row in one round trip keeps the lock for fewer round trips (foreign keys are checked at
        the end of the statement, when the task exists). Numbers are distinct and gap-free: a
        create that rolls back gives its number back. `values` may carry the task's id.

        The statement is built once per shape (which columns, labels or not, audit or not,
        NOTIFY or not) with bound parameters: building and compiling it for every create cost
        more CPU than the rest of the request, while the project's counter row was locked.

        It takes a number only where every check holds as it locks the counter row: the project
        not archived, the assignee a member of its workspace, every label live there, and with
        `writers`, the creator a member with one of those roles (so the project is within the
        creator's workspaces). Otherwise it writes nothing and raises CreateRefused; the caller
        reads `creation_checks` to say which check failed."""
        given = {**_TASK_DEFAULTS, "id": uuid7(), **values}
        # Named apart from every column: a parameter named after a column of the UPDATE would be
        # added to its SET list.
        params: dict[str, Any] = {f"new_{k}": v for k, v in given.items()}
        params["project_id"] = project_id
        params.setdefault("new_assignee_id", None)  # the checks read them, given or not
        params.setdefault("new_created_by_id", None)
        params["live_label_ids"] = list(dict.fromkeys(label_ids))
        params["writer_roles"] = list(writers) if writers is not None else None
        audit_columns: tuple[str, ...] = ()
        if audit is not None:
            audit = {"id": uuid7(), **audit}
            audit.pop("workspace_id", None)  # the project's
            params["audit_changes"] = audit.pop("changes") or {}
            audit_columns = tuple(audit)
            params.update({f"audit_{k}": v for k, v in audit.items()})
        if label_ids:
            params["label_ids"] = list(dict.fromkeys(label_ids))
        if notify is not None:
            params["notify_channel"], params["notify_payload"] = notify
        stmt = _creation(tuple(given), audit_columns, bool(label_ids), notify is not None)
        try:
            created = await self.db.run(stmt, params, writes=True)
        except IntegrityError as exc:  # the assignee, a label or the project went away meanwhile
            raise translate(exc, self.entity) from exc
        if not created:
            raise CreateRefused("the project changed while the task was being created")
        row = created[0]
        # The session's object for the row, as if loaded: later changes to it are flushed.
        # Filled in as a load does (no __init__, no attribute events): a fifth of the cost.
        task: Task = _new_task()
        task.__dict__.update({attr: row[column] for attr, column in _TASK_ATTRS})
        make_transient_to_detached(task)
        self.db.add(task)
        return task, row["project_key"]

    async def set_labels(self, task: Task, label_ids: list[uuid.UUID]) -> None:
        await self.db.execute(delete(TaskLabel).where(TaskLabel.task_id == task.id))
        if label_ids:
            rows = [
                {"task_id": task.id, "label_id": lid, "workspace_id": task.workspace_id}
                for lid in dict.fromkeys(label_ids)
            ]
            await self.db.execute(insert(TaskLabel), rows)
