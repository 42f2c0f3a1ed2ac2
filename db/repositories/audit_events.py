from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, ClassVar

from sqlalchemy import ColumnElement, Insert, func, insert, literal, select

from db.ids import uuid7
from db.models import AuditEvent, Membership, Role
from db.repositories.base import Repository
from db.repositories.keyset import KeysetOrder, SortKey

# Newest first: what a reader of a history wants to see.
AUDIT_ORDER = KeysetOrder(
    "audit",
    (
        SortKey(AuditEvent.created_at, "created_at", descending=True),
        SortKey(AuditEvent.id, "id", descending=True),
    ),
)


class AuditEventRepository(Repository[AuditEvent]):
    model: ClassVar[type[AuditEvent]] = AuditEvent
    entity = "audit event"

    def readable_in(self, readers: Sequence[Role]) -> ColumnElement[bool]:
        """Events of the workspaces where the viewer's role is one of `readers` (those allowed
        to read the audit trail): the SQL twin of the node resolver's check."""
        assert self.scope is not None, "a viewer's read"
        mine = select(Membership.workspace_id).where(
            Membership.user_id == self.scope.user_id, Membership.role.in_(readers)
        )
        return AuditEvent.workspace_id.in_(mine)

    async def record(
        self,
        *,
        action: str,
        entity_type: str,
        entity_id: uuid.UUID,
        actor_id: uuid.UUID | None,
        workspace_id: uuid.UUID | None,
        changes: dict[str, Any] | None = None,
        request_id: str | None = None,
        notify: tuple[str, str] | None = None,
    ) -> None:
        """One audit row. `notify` (channel, payload) is sent by the same statement: a NOTIFY
        that announces the change costs no round trip of its own."""
        stmt: Any = insert(AuditEvent).values(
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            actor_id=actor_id,
            workspace_id=workspace_id,
            changes=changes,
            request_id=request_id,
        )
        if notify is not None:
            stmt = stmt.returning(func.pg_notify(*notify))
        await self.db.execute(stmt)

    @staticmethod
    def insert_from(source: Any, changes: ColumnElement[Any], columns: dict[str, Any]) -> Insert:
        """The audit row as INSERT ... SELECT from `source`, a CTE of the writing statement: it is
        written only when `source` returns its row, and `changes` (JSONB) may use its columns.
        `columns` are the other columns of `record` (values, or bound parameters), `id` among them
        or a new one."""
        values = {"id": uuid7(), **columns}
        table = AuditEvent.__table__
        row = select(
            *(
                v if isinstance(v, ColumnElement) else literal(v, table.c[k].type)
                for k, v in values.items()
            ),
            changes,
        ).select_from(source)
        # Every column is given (the row's Python-side defaults do not apply to a SELECT).
        return insert(AuditEvent).from_select([*values, "changes"], row, include_defaults=False)
