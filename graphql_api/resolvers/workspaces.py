"""Workspaces and their members."""

from __future__ import annotations

import uuid

import strawberry

from db.errors import AlreadyExists, Conflict, NotFound
from db.models import Membership as MembershipModel
from db.models import Role
from db.models import Workspace as WorkspaceModel
from db.repositories import (
    MembershipRepository,
    PageArgs,
    UserRepository,
    WorkspaceRepository,
)
from db.repositories.workspaces import WORKSPACE_ORDER
from graphql_api import audit, policy, validation
from graphql_api.context import Context
from graphql_api.resolvers.mutation import mutation
from graphql_api.schema.inputs import (
    AddMemberInput,
    ChangeMemberRoleInput,
    CreateWorkspaceInput,
    RemoveMemberInput,
)
from graphql_api.schema.payloads import (
    AddMemberPayload,
    ChangeMemberRolePayload,
    CreateWorkspacePayload,
    RemoveMemberPayload,
)
from graphql_api.schema.relay import Connection, parse_id, to_global_id
from graphql_api.schema.types import Membership, Workspace

SLUG_ATTEMPTS = 20


async def workspaces(
    info: strawberry.Info, first: int | None = None, after: str | None = None
) -> Connection[Workspace]:
    ctx: Context = info.context
    repo = WorkspaceRepository(ctx.db, ctx.scope)
    stmt = repo.select()
    page = await repo.page(stmt, WORKSPACE_ORDER, PageArgs(first=first, after=after))
    return Connection.from_page(page, Workspace.from_model, lambda: repo.count(stmt))


async def workspace(info: strawberry.Info, slug: str) -> Workspace | None:
    ctx: Context = info.context
    found = await WorkspaceRepository(ctx.db, ctx.scope).get_by_slug(slug)
    return Workspace.from_model(found) if found else None


async def _role_in(ctx: Context, workspace_id: uuid.UUID) -> Role | None:
    return await ctx.loaders.roles.load(workspace_id)


async def _role_locked(ctx: Context, workspace_id: uuid.UUID) -> Role | None:
    """The viewer's role once the workspace's membership lock is held (and held itself until the
    commit): no other change to its memberships can make it stale before this one commits. Taken
    after a first check without locks, so that outsiders lock nothing."""
    await WorkspaceRepository(ctx.db).lock(workspace_id)
    return await MembershipRepository(ctx.db).role_for_write(ctx.require_viewer(), workspace_id)


async def _unique_slug(repo: WorkspaceRepository, name: str) -> str:
    base = validation.slugify(name)
    for n in range(1, SLUG_ATTEMPTS + 1):
        candidate = base if n == 1 else f"{base}-{n}"
        if await repo.get_by_slug(candidate) is None:
            return candidate
    return f"{base}-{uuid.uuid4().hex[:6]}"


@mutation(CreateWorkspacePayload)
async def create_workspace(
    info: strawberry.Info, input: CreateWorkspaceInput
) -> CreateWorkspacePayload:
    ctx: Context = info.context
    viewer = ctx.require_viewer()
    name = validation.text(input.name, ["input", "name"], max_length=100, what="the name")
    repo = WorkspaceRepository(ctx.db)
    if input.slug is not None:
        slug = validation.slug(input.slug, ["input", "slug"])
    else:
        slug = await _unique_slug(repo, name)
    try:
        ws = await repo.add(WorkspaceModel(name=name, slug=slug))
    except AlreadyExists:
        raise AlreadyExists(f"the slug {slug!r} is taken", field=["input", "slug"]) from None
    await MembershipRepository(ctx.db).add(
        MembershipModel(workspace_id=ws.id, user_id=viewer, role=Role.OWNER)
    )
    await audit.record(
        ctx,
        "workspace.create",
        "Workspace",
        ws.id,
        workspace_id=ws.id,
        changes={"name": [None, name], "slug": [None, slug]},
    )
    return CreateWorkspacePayload(workspace=Workspace.from_model(ws))


async def _target(
    ctx: Context, workspace_gid: str, user_gid: str
) -> tuple[uuid.UUID, Role, MembershipModel]:
    """The workspace (visible to the viewer, or NOT_FOUND), the viewer's role, the target member."""
    workspace_id = parse_id(workspace_gid, "Workspace", ["input", "workspaceId"])
    policy.require(await _role_in(ctx, workspace_id), policy.Action.READ)
    user_id = parse_id(user_gid, "User", ["input", "userId"])
    role = policy.require(await _role_locked(ctx, workspace_id), policy.Action.READ)
    member = await MembershipRepository(ctx.db).get_for(workspace_id, user_id)
    if member is None:
        raise NotFound("no such member in this workspace", field=["input", "userId"])
    return workspace_id, role, member


async def _keep_an_owner(ctx: Context, member: MembershipModel) -> None:
    if (
        member.role == Role.OWNER
        and await MembershipRepository(ctx.db).count_owners(member.workspace_id) <= 1
    ):
        raise Conflict(
            "a workspace needs an owner: make someone else OWNER first", field=["input", "userId"]
        )


@mutation(AddMemberPayload)
async def add_member(info: strawberry.Info, input: AddMemberInput) -> AddMemberPayload:
    ctx: Context = info.context
    workspace_id = parse_id(input.workspace_id, "Workspace", ["input", "workspaceId"])
    policy.require(await _role_in(ctx, workspace_id), policy.membership_action(input.role))
    email = validation.email(input.email, ["input", "email"])
    policy.require(await _role_locked(ctx, workspace_id), policy.membership_action(input.role))
    user = await UserRepository(ctx.db).get_by_email(email)
    if user is None:
        raise NotFound(
            "no user has this email; ask them to register first", field=["input", "email"]
        )
    try:
        member = await MembershipRepository(ctx.db).add(
            MembershipModel(workspace_id=workspace_id, user_id=user.id, role=input.role)
        )
    except AlreadyExists:
        raise AlreadyExists("this user is a member already", field=["input", "email"]) from None
    await audit.record(
        ctx,
        "member.add",
        "User",
        user.id,
        workspace_id=workspace_id,
        changes={"role": [None, input.role.value]},
    )
    return AddMemberPayload(membership=Membership.from_model(member))


@mutation(ChangeMemberRolePayload)
async def change_member_role(
    info: strawberry.Info, input: ChangeMemberRoleInput
) -> ChangeMemberRolePayload:
    ctx: Context = info.context
    workspace_id, role, member = await _target(ctx, input.workspace_id, input.user_id)
    policy.require(role, policy.membership_action(member.role, input.role))
    old = member.role
    if old != input.role:
        if input.role != Role.OWNER:
            await _keep_an_owner(ctx, member)
        member.role = input.role
        await MembershipRepository(ctx.db).flush(member)
        await audit.record(
            ctx,
            "member.change_role",
            "User",
            member.user_id,
            workspace_id=workspace_id,
            changes={"role": [old.value, input.role.value]},
        )
    return ChangeMemberRolePayload(membership=Membership.from_model(member))


@mutation(RemoveMemberPayload)
async def remove_member(info: strawberry.Info, input: RemoveMemberInput) -> RemoveMemberPayload:
    ctx: Context = info.context
    workspace_id, role, member = await _target(ctx, input.workspace_id, input.user_id)
    leaving = member.user_id == ctx.require_viewer()
    if not leaving:  # anyone may leave; removing others takes the right to manage their role
        policy.require(role, policy.membership_action(member.role))
    await _keep_an_owner(ctx, member)
    await MembershipRepository(ctx.db).remove(member)
    await audit.record(
        ctx,
        "member.remove",
        "User",
        member.user_id,
        workspace_id=workspace_id,
        changes={"role": [member.role.value, None]},
    )
    ws = await WorkspaceRepository(ctx.db, ctx.scope).get(workspace_id)
    return RemoveMemberPayload(
        removed_user_id=to_global_id("User", member.user_id),
        workspace=Workspace.from_model(ws) if ws else None,
    )
