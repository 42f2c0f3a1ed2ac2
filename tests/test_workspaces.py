"""Workspaces, members, roles, and the rules on owners."""

from __future__ import annotations

from typing import Any

from tests.conftest import SqlCounter
from tests.gql import (
    ADD_MEMBER,
    CHANGE_MEMBER_ROLE,
    CREATE_WORKSPACE,
    REMOVE_MEMBER,
    Account,
    Api,
)

MEMBERS = """
query($slug: String!, $first: Int, $after: String) {
  workspace(slug: $slug) {
    viewerRole
    members(first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { cursor node { role user { id email displayName } } }
    }
  }
}"""


def errors(data: dict[str, Any], field: str) -> list[tuple[str, list[str] | None]]:
    return [(e["code"], e["field"]) for e in data[field]["userErrors"]]


async def test_create_workspace_derives_a_unique_slug(api: Api) -> None:
    owner = await api.register()
    first = await api.workspace(owner, "Acme Rockets!")
    second = await api.workspace(owner, "Acme rockets")
    assert (first["slug"], second["slug"]) == ("acme-rockets", "acme-rockets-2")
    assert first["viewerRole"] == "OWNER"


async def test_given_slug_validated_and_unique(api: Api) -> None:
    owner = await api.register()
    await api.ok(CREATE_WORKSPACE, {"input": {"name": "A", "slug": "team-a"}}, owner.token)
    taken = await api.post(
        CREATE_WORKSPACE, {"input": {"name": "B", "slug": "team-a"}}, owner.token
    )
    assert errors(taken["data"], "createWorkspace") == [("ALREADY_EXISTS", ["input", "slug"])]
    bad = await api.post(
        CREATE_WORKSPACE, {"input": {"name": "B", "slug": "Not A Slug"}}, owner.token
    )
    assert errors(bad["data"], "createWorkspace") == [("INVALID_INPUT", ["input", "slug"])]
    empty = await api.post(CREATE_WORKSPACE, {"input": {"name": "  "}}, owner.token)
    assert errors(empty["data"], "createWorkspace") == [("INVALID_INPUT", ["input", "name"])]


async def test_workspaces_lists_only_mine_with_pagination(api: Api) -> None:
    me, other = await api.register(), await api.register()
    slugs = [(await api.workspace(me, f"Mine {i}"))["slug"] for i in range(3)]
    await api.workspace(other, "Theirs")
    query = "query($after: String) { workspaces(first: 2, after: $after) { totalCount pageInfo { hasNextPage endCursor } nodes { slug } } }"
    page1 = (await api.ok(query, token=me.token))["workspaces"]
    page2 = (await api.ok(query, {"after": page1["pageInfo"]["endCursor"]}, me.token))["workspaces"]
    assert page1["totalCount"] == 3
    assert [n["slug"] for n in page1["nodes"] + page2["nodes"]] == slugs
    assert page1["pageInfo"]["hasNextPage"] and not page2["pageInfo"]["hasNextPage"]


async def test_members_and_roles(api: Api) -> None:
    owner, admin, viewer = (
        await api.register("owner"),
        await api.register("admin"),
        await api.register("viewer"),
    )
    ws = await api.workspace(owner, "Crew")
    await api.add(owner, ws["id"], admin, "ADMIN")
    await api.add(admin, ws["id"], viewer, "VIEWER")
    data = await api.ok(MEMBERS, {"slug": ws["slug"], "first": 2}, viewer.token)
    members = data["workspace"]["members"]
    assert data["workspace"]["viewerRole"] == "VIEWER"
    assert members["totalCount"] == 3 and members["pageInfo"]["hasNextPage"]
    assert [e["node"]["role"] for e in members["edges"]] == ["OWNER", "ADMIN"]
    # Co-members see each other's email.
    assert members["edges"][0]["node"]["user"]["email"] == owner.email
    rest = await api.ok(
        MEMBERS, {"slug": ws["slug"], "after": members["pageInfo"]["endCursor"]}, viewer.token
    )
    assert [e["node"]["user"]["id"] for e in rest["workspace"]["members"]["edges"]] == [viewer.id]


async def test_add_member_errors(api: Api) -> None:
    owner, someone = await api.register(), await api.register()
    ws = await api.workspace(owner)
    unknown = await api.post(
        ADD_MEMBER,
        {"input": {"workspaceId": ws["id"], "email": "ghost@example.test", "role": "MEMBER"}},
        owner.token,
    )
    assert errors(unknown["data"], "addMember") == [("NOT_FOUND", ["input", "email"])]
    await api.add(owner, ws["id"], someone, "MEMBER")
    again = await api.post(
        ADD_MEMBER,
        {"input": {"workspaceId": ws["id"], "email": someone.email, "role": "VIEWER"}},
        owner.token,
    )
    assert errors(again["data"], "addMember") == [("ALREADY_EXISTS", ["input", "email"])]
    bad_id = await api.post(
        ADD_MEMBER,
        {"input": {"workspaceId": "bogus", "email": someone.email, "role": "VIEWER"}},
        owner.token,
    )
    assert errors(bad_id["data"], "addMember") == [("NOT_FOUND", ["input", "workspaceId"])]


async def change(
    api: Api, actor: Account, ws: dict[str, Any], target: Account, role: str
) -> list[Any]:
    body = await api.post(
        CHANGE_MEMBER_ROLE,
        {"input": {"workspaceId": ws["id"], "userId": target.id, "role": role}},
        actor.token,
    )
    return errors(body["data"], "changeMemberRole")


async def remove(api: Api, actor: Account, ws: dict[str, Any], target: Account) -> list[Any]:
    body = await api.post(
        REMOVE_MEMBER, {"input": {"workspaceId": ws["id"], "userId": target.id}}, actor.token
    )
    return errors(body["data"], "removeMember")


async def test_last_owner_cannot_leave_or_be_demoted(api: Api) -> None:
    owner, second = await api.register(), await api.register()
    ws = await api.workspace(owner)
    assert await change(api, owner, ws, owner, "ADMIN") == [("CONFLICT", ["input", "userId"])]
    assert await remove(api, owner, ws, owner) == [("CONFLICT", ["input", "userId"])]
    await api.add(owner, ws["id"], second, "OWNER")
    assert await change(api, owner, ws, owner, "ADMIN") == []
    assert await remove(api, second, ws, second) == [("CONFLICT", ["input", "userId"])]
    assert await remove(api, owner, ws, owner) == []


async def test_admins_cannot_touch_owners_or_admins(api: Api) -> None:
    owner, admin, other_admin, member = [await api.register() for _ in range(4)]
    ws = await api.workspace(owner)
    for account, role in ((admin, "ADMIN"), (other_admin, "ADMIN"), (member, "MEMBER")):
        await api.add(owner, ws["id"], account, role)
    assert await change(api, admin, ws, owner, "MEMBER") == [("FORBIDDEN", None)]
    assert await remove(api, admin, ws, owner) == [("FORBIDDEN", None)]
    assert await change(api, admin, ws, other_admin, "MEMBER") == [("FORBIDDEN", None)]
    assert await change(api, admin, ws, member, "ADMIN") == [("FORBIDDEN", None)]
    assert await change(api, admin, ws, member, "VIEWER") == []
    assert await remove(api, admin, ws, member) == []
    # Anyone may leave.
    assert await remove(api, admin, ws, admin) == []


async def test_removed_member_loses_access(api: Api) -> None:
    owner, member = await api.register(), await api.register()
    ws = await api.workspace(owner)
    await api.add(owner, ws["id"], member, "MEMBER")
    assert (await api.ok(MEMBERS, {"slug": ws["slug"]}, member.token))["workspace"] is not None
    assert await remove(api, owner, ws, member) == []
    assert (await api.ok(MEMBERS, {"slug": ws["slug"]}, member.token))["workspace"] is None


async def test_every_membership_mutation_is_audited(api: Api, db: Any) -> None:
    from sqlalchemy import select

    from db.models import AuditEvent

    owner, member = await api.register(), await api.register()
    ws = await api.workspace(owner)
    await api.add(owner, ws["id"], member, "MEMBER")
    await change(api, owner, ws, member, "VIEWER")
    await remove(api, owner, ws, member)
    actions = [
        e.action
        for e in await db.scalars(select(AuditEvent).order_by(AuditEvent.created_at, AuditEvent.id))
    ]
    assert actions[-4:] == ["workspace.create", "member.add", "member.change_role", "member.remove"]
    last = (await db.scalars(select(AuditEvent).where(AuditEvent.action == "member.change_role")))[
        -1
    ]
    assert last.changes == {"role": ["MEMBER", "VIEWER"]}
    assert last.request_id


WORKSPACES_WITH_MEMBERS = """
{ workspaces(first: 50) { nodes { slug viewerRole members(first: 10) { totalCount nodes { role user { displayName email } } } } } }
"""


async def test_nested_members_do_not_grow_sql_with_page_size(
    api: Api, resolver_api: Api, sql_counter: SqlCounter
) -> None:
    me = await api.register()
    others = [await api.register() for _ in range(3)]
    counts = {}
    for n in (1, 6):
        for _ in range(n - (1 if n == 6 else 0)):
            ws = await api.workspace(me)
            for other in others:
                await api.add(me, ws["id"], other, "MEMBER")
        for path, client in (("fast", api), ("resolvers", resolver_api)):
            sql_counter.reset()
            data = await client.ok(WORKSPACES_WITH_MEMBERS, token=me.token)
            assert len(data["workspaces"]["nodes"]) == n
            assert all(len(w["members"]["nodes"]) == 4 for w in data["workspaces"]["nodes"])
            counts[path, n] = sql_counter.count
    # Resolvers: workspaces page, roles, member pages, member counts, users (batched).
    assert counts == {("fast", 1): 1, ("fast", 6): 1, ("resolvers", 1): 5, ("resolvers", 6): 5}
