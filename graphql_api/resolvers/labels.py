"""createLabel, updateLabel, deleteLabel (MEMBER and above)."""

from __future__ import annotations

import re

import strawberry

from db.errors import AlreadyExists, InvalidInput
from db.models import Label as LabelModel
from db.repositories import LabelRepository
from graphql_api import audit, policy, validation
from graphql_api.context import Context
from graphql_api.resolvers.common import apply, authorize, created, find, given, required
from graphql_api.resolvers.mutation import mutation
from graphql_api.schema.core_inputs import CreateLabelInput, DeleteLabelInput, UpdateLabelInput
from graphql_api.schema.payloads import (
    CreateLabelPayload,
    DeleteLabelPayload,
    UpdateLabelPayload,
)
from graphql_api.schema.relay import parse_id, to_global_id
from graphql_api.schema.types import Label

_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")


def _name(value: str) -> str:
    return validation.text(value, ["input", "name"], max_length=50, what="the name")


def _color(value: str) -> str:
    if not _COLOR.match(value):
        raise InvalidInput("a color is #RRGGBB", field=["input", "color"])
    return value.upper()


async def _save(repo: LabelRepository, label: LabelModel) -> LabelModel:
    try:
        return await repo.add(label)
    except AlreadyExists:
        raise AlreadyExists(
            f"a label named {label.name!r} exists already", field=["input", "name"]
        ) from None


@mutation(CreateLabelPayload)
async def create_label(info: strawberry.Info, input: CreateLabelInput) -> CreateLabelPayload:
    ctx: Context = info.context
    workspace_id = parse_id(input.workspace_id, "Workspace", ["input", "workspaceId"])
    await authorize(ctx, workspace_id, policy.Action.WRITE_LABELS)
    values = {"name": _name(input.name), "color": _color(input.color)}
    label = await _save(LabelRepository(ctx.db), LabelModel(workspace_id=workspace_id, **values))
    await audit.record(
        ctx,
        "label.create",
        "Label",
        label.id,
        workspace_id=workspace_id,
        changes=created(values),
    )
    return CreateLabelPayload(label=Label.from_model(label))


@mutation(UpdateLabelPayload)
async def update_label(info: strawberry.Info, input: UpdateLabelInput) -> UpdateLabelPayload:
    ctx: Context = info.context
    label = await find(ctx, ctx.loaders.labels, input.id, "Label", ["input", "id"])
    await authorize(ctx, label.workspace_id, policy.Action.WRITE_LABELS)
    updates = {}
    if given(input.name):
        updates["name"] = _name(required(input.name, ["input", "name"]))
    if given(input.color):
        updates["color"] = _color(required(input.color, ["input", "color"]))
    changes = apply(label, updates)
    if changes:
        await _save(LabelRepository(ctx.db), label)
        await audit.record(
            ctx,
            "label.update",
            "Label",
            label.id,
            workspace_id=label.workspace_id,
            changes=changes,
        )
    return UpdateLabelPayload(label=Label.from_model(label))


@mutation(DeleteLabelPayload)
async def delete_label(info: strawberry.Info, input: DeleteLabelInput) -> DeleteLabelPayload:
    """Soft delete: the label disappears from every task and list, its name becomes free."""
    ctx: Context = info.context
    label = await find(ctx, ctx.loaders.labels, input.id, "Label", ["input", "id"])
    await authorize(ctx, label.workspace_id, policy.Action.WRITE_LABELS)
    await LabelRepository(ctx.db).delete(label)
    await audit.record(
        ctx,
        "label.delete",
        "Label",
        label.id,
        workspace_id=label.workspace_id,
        changes={"name": [label.name, None]},
    )
    return DeleteLabelPayload(deleted_label_id=to_global_id("Label", label.id))
