"""What every write resolver does: find the target as the viewer sees it, check the role,
validate optional fields, and describe the change for the audit trail."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

import strawberry
from strawberry.dataloader import DataLoader

from db.errors import Conflict, InvalidInput, NotFound
from db.models import Role
from db.repositories.workspaces import MembershipRepository
from graphql_api import policy
from graphql_api.context import Context
from graphql_api.schema.relay import parse_id

MAX_DESCRIPTION = 50_000


async def find(
    ctx: Context,
    loader: DataLoader[uuid.UUID, Any],
    global_id: str,
    type_name: str,
    field: list[str],
) -> Any:
    """The object with this id as the viewer sees it, or NOT_FOUND (also for other tenants')."""
    found = await loader.load(parse_id(global_id, type_name, field))
    if found is None:
        raise NotFound(f"no {type_name} with this id", field=field)
    return found


async def sees_task(ctx: Context, task: Any) -> bool:
    """policy.sees_task for this viewer: deleted tasks only for roles that may see them."""
    if task.deleted_at is None:
        # Loaded within the viewer's workspaces, where every role reads: no role to look up.
        return True
    role = await ctx.loaders.roles.load(task.workspace_id)
    return policy.sees_task(role, task.deleted_at is not None)


async def task_of_comment(ctx: Context, comment: Any) -> Any | None:
    """Comments follow their task: the comment's task when the viewer sees it, else None (and
    then the comment does not exist for them either)."""
    task = await ctx.loaders.tasks.load(comment.task_id)
    return task if task is not None and await sees_task(ctx, task) else None


async def authorize(ctx: Context, workspace_id: uuid.UUID, action: policy.Action) -> Role:
    """The viewer's role, allowing `action`, for a write: held until the write commits
    (MembershipRepository.role_for_write), so a role taken away meanwhile either waits for the
    write or refuses it, never lets it through afterwards."""
    role = await MembershipRepository(ctx.db).role_for_write(ctx.require_viewer(), workspace_id)
    return policy.require(role, action)


def given(value: Any) -> bool:
    """An optional input field that the client actually sent (null included)."""
    return value is not strawberry.UNSET


def check_version(model: Any, expected: int | None, field: list[str]) -> None:
    """A stale expectedVersion is a CONFLICT, never a silent overwrite."""
    if given(expected) and expected is not None and expected != model.version:
        raise Conflict(
            f"it was changed by someone else (now at version {model.version}); "
            "reload it and try again",
            field=field,
        )


async def save_version(repo: Any, model: Any, expected: int | None) -> None:
    """Write a changed versioned object. A concurrent change that committed after we read it
    (the UPDATE finds the version moved on) is the same CONFLICT as a stale expectedVersion."""
    try:
        await repo.flush(model)
    except Conflict as exc:
        field = (
            ["input", "expectedVersion"]
            if given(expected) and expected is not None
            else ["input", "id"]
        )
        raise Conflict(exc.message, field=field) from exc


def description(value: str | None, field: list[str]) -> str | None:
    """Optional long text: trimmed, empty means none, at most 50,000 characters."""
    if value is None:
        return None
    if len(value) > MAX_DESCRIPTION:
        raise InvalidInput(f"at most {MAX_DESCRIPTION} characters", field=field)
    return value.strip() or None


def required(value: Any, field: list[str]) -> Any:
    if value is None:
        raise InvalidInput("cannot be null", field=field)
    return value


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def apply(obj: Any, updates: dict[str, Any]) -> dict[str, list[Any]]:
    """Set the attributes that change; return {attribute: [before, after]} of those."""
    changes = {}
    for name, new in updates.items():
        old = getattr(obj, name)
        if old != new:
            changes[name] = [jsonable(old), jsonable(new)]
            setattr(obj, name, new)
    return changes


def created(values: dict[str, Any]) -> dict[str, list[Any]]:
    return {k: [None, jsonable(v)] for k, v in values.items() if v is not None}
