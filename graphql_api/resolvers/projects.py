"""createProject, updateProject, archiveProject, unarchiveProject (ADMIN and above)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import strawberry

from db.errors import AlreadyExists, InvalidInput
from db.models import Project as ProjectModel
from db.repositories import ProjectRepository
from graphql_api import audit, policy, validation
from graphql_api.context import Context
from graphql_api.resolvers.common import (
    apply,
    authorize,
    check_version,
    created,
    description,
    find,
    given,
    required,
    save_version,
)
from graphql_api.resolvers.mutation import mutation
from graphql_api.schema.core_inputs import (
    ArchiveProjectInput,
    CreateProjectInput,
    UnarchiveProjectInput,
    UpdateProjectInput,
)
from graphql_api.schema.payloads import (
    ArchiveProjectPayload,
    CreateProjectPayload,
    UnarchiveProjectPayload,
    UpdateProjectPayload,
)
from graphql_api.schema.relay import parse_id
from graphql_api.schema.types import Project

_KEY = re.compile(r"^[A-Z][A-Z0-9]{1,9}$")


@mutation(CreateProjectPayload)
async def create_project(info: strawberry.Info, input: CreateProjectInput) -> CreateProjectPayload:
    ctx: Context = info.context
    workspace_id = parse_id(input.workspace_id, "Workspace", ["input", "workspaceId"])
    await authorize(ctx, workspace_id, policy.Action.MANAGE_PROJECTS)
    if not _KEY.match(input.key):
        raise InvalidInput(
            "a key is 2 to 10 upper-case letters and digits, starting with a letter",
            field=["input", "key"],
        )
    values = {
        "key": input.key,
        "name": validation.text(input.name, ["input", "name"], max_length=100, what="the name"),
        "description": description(input.description, ["input", "description"]),
    }
    try:
        project = await ProjectRepository(ctx.db).add(
            ProjectModel(workspace_id=workspace_id, **values)
        )
    except AlreadyExists:
        raise AlreadyExists(
            f"the key {input.key} is taken in this workspace", field=["input", "key"]
        ) from None
    await audit.record(
        ctx,
        "project.create",
        "Project",
        project.id,
        workspace_id=workspace_id,
        changes=created(values),
    )
    return CreateProjectPayload(project=Project.from_model(project))


@mutation(UpdateProjectPayload)
async def update_project(info: strawberry.Info, input: UpdateProjectInput) -> UpdateProjectPayload:
    ctx: Context = info.context
    project = await find(ctx, ctx.loaders.projects, input.id, "Project", ["input", "id"])
    await authorize(ctx, project.workspace_id, policy.Action.MANAGE_PROJECTS)
    check_version(project, input.expected_version, ["input", "expectedVersion"])
    updates: dict[str, str | None] = {}
    if given(input.name):
        name = required(input.name, ["input", "name"])
        updates["name"] = validation.text(name, ["input", "name"], max_length=100, what="the name")
    if given(input.description):
        updates["description"] = description(input.description, ["input", "description"])
    changes = apply(project, updates)
    if changes:
        await save_version(ProjectRepository(ctx.db), project, input.expected_version)
        await audit.record(
            ctx,
            "project.update",
            "Project",
            project.id,
            workspace_id=project.workspace_id,
            changes=changes,
        )
    return UpdateProjectPayload(project=Project.from_model(project))


async def _set_archived(ctx: Context, global_id: str, archived: bool) -> Project:
    project = await find(ctx, ctx.loaders.projects, global_id, "Project", ["input", "id"])
    await authorize(ctx, project.workspace_id, policy.Action.MANAGE_PROJECTS)
    if (project.archived_at is not None) != archived:  # archiving twice keeps the first date
        changes = apply(project, {"archived_at": datetime.now(UTC) if archived else None})
        await ProjectRepository(ctx.db).flush(project)
        await audit.record(
            ctx,
            "project.archive" if archived else "project.unarchive",
            "Project",
            project.id,
            workspace_id=project.workspace_id,
            changes=changes,
        )
    return Project.from_model(project)


@mutation(ArchiveProjectPayload)
async def archive_project(
    info: strawberry.Info, input: ArchiveProjectInput
) -> ArchiveProjectPayload:
    ctx: Context = info.context
    return ArchiveProjectPayload(project=await _set_archived(ctx, input.id, True))


@mutation(UnarchiveProjectPayload)
async def unarchive_project(
    info: strawberry.Info, input: UnarchiveProjectInput
) -> UnarchiveProjectPayload:
    ctx: Context = info.context
    return UnarchiveProjectPayload(project=await _set_archived(ctx, input.id, False))
