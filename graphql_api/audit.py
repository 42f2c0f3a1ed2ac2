"""The audit trail: one event per mutation, in the same transaction as the change."""

from __future__ import annotations

import uuid
from typing import Any

from db.repositories import AuditEventRepository
from graphql_api.context import Context


async def record(
    ctx: Context,
    action: str,
    entity_type: str,
    entity_id: uuid.UUID,
    *,
    workspace_id: uuid.UUID | None,
    changes: dict[str, Any] | None = None,
    actor_id: uuid.UUID | None = None,
    notify: tuple[str, str] | None = None,
) -> None:
    """Audit a change (after writing what is still pending of it); `notify` also announces it,
    in the same statement (graphql_api.events.publish)."""
    await ctx.db.flush()
    await AuditEventRepository(ctx.db).record(
        **row(
            ctx,
            action,
            entity_type,
            entity_id,
            workspace_id=workspace_id,
            changes=changes,
            actor_id=actor_id,
        ),
        notify=notify,
    )


def row(
    ctx: Context,
    action: str,
    entity_type: str,
    entity_id: uuid.UUID,
    *,
    workspace_id: uuid.UUID | None,
    changes: dict[str, Any] | None = None,
    actor_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """The audit row of a change: for `record`, or for a repository that writes it in the same
    statement as the change (TaskRepository.create)."""
    return {
        "action": action,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "actor_id": actor_id or ctx.viewer_id,
        "workspace_id": workspace_id,
        "changes": changes,
        "request_id": ctx.request_id,
    }
