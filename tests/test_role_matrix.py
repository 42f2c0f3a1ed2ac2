"""Every workspace/member mutation, for every role (and outsiders and anonymous callers).

The expectations are computed from the policy table (graphql_api.policy), not written out again:
allowed -> no userErrors; a member without the right -> FORBIDDEN; not a member -> NOT_FOUND
(existence never leaks); anonymous -> UNAUTHENTICATED.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from db.models import Role
from graphql_api import policy
from tests.gql import (
    ADD_MEMBER,
    CHANGE_MEMBER_ROLE,
    CREATE_WORKSPACE,
    REMOVE_MEMBER,
    Account,
    Api,
    error_codes,
)

ROLES = list(Role)
ACTORS: list[Role | None] = [*ROLES, None]  # None: signed in, but not a member


@dataclass(frozen=True)
class Case:
    mutation: str
    target_role: Role | None  # the target's current role (None: not yet a member)
    new_role: Role | None  # the role being granted (add / change)

    @property
    def action(self) -> policy.Action:
        roles = [r for r in (self.target_role, self.new_role) if r is not None]
        return policy.membership_action(*roles)


CASES = (
    [Case("addMember", None, r) for r in ROLES]
    + [Case("changeMemberRole", old, new) for old in ROLES for new in ROLES if old != new]
    + [Case("removeMember", r, None) for r in ROLES]
)


def expected(actor: Role | None, case: Case) -> str:
    if actor is None:
        return "NOT_FOUND"
    return "OK" if policy.can(actor, case.action) else "FORBIDDEN"


async def attempt(api: Api, actor: Account | None, ws_id: str, target: Account, case: Case) -> str:
    token = actor.token if actor else None
    if case.mutation == "addMember":
        query = ADD_MEMBER
        variables = {"workspaceId": ws_id, "email": target.email, "role": case.new_role.value}  # type: ignore[union-attr]
    elif case.mutation == "changeMemberRole":
        query = CHANGE_MEMBER_ROLE
        variables = {"workspaceId": ws_id, "userId": target.id, "role": case.new_role.value}  # type: ignore[union-attr]
    else:
        query = REMOVE_MEMBER
        variables = {"workspaceId": ws_id, "userId": target.id}
    body = await api.post(query, {"input": variables}, token)
    if body.get("errors"):
        return error_codes(body)[0]
    user_errors = body["data"][case.mutation]["userErrors"]
    return user_errors[0]["code"] if user_errors else "OK"


@pytest.mark.parametrize("actor_role", ACTORS, ids=lambda r: r.value if r else "OUTSIDER")
async def test_membership_mutations_follow_the_policy(api: Api, actor_role: Role | None) -> None:
    owner, actor, target = await api.register(), await api.register(), await api.register()
    outcomes = {}
    for case in CASES:
        ws = await api.workspace(owner)
        if actor_role is not None:
            await api.add(owner, ws["id"], actor, actor_role.value)
        if case.target_role is not None:
            await api.add(owner, ws["id"], target, case.target_role.value)
        outcomes[case] = await attempt(api, actor, ws["id"], target, case)
    assert outcomes == {case: expected(actor_role, case) for case in CASES}


async def test_anonymous_callers_get_unauthenticated(api: Api) -> None:
    owner, target = await api.register(), await api.register()
    ws = await api.workspace(owner)
    await api.add(owner, ws["id"], target, "MEMBER")
    for case in CASES:
        assert await attempt(api, None, ws["id"], target, case) == "UNAUTHENTICATED"
    body = await api.post(CREATE_WORKSPACE, {"input": {"name": "x"}})
    assert error_codes(body) == ["UNAUTHENTICATED"]


@pytest.mark.parametrize("actor_role", ROLES, ids=lambda r: r.value)
async def test_every_member_can_read_and_create_workspaces(api: Api, actor_role: Role) -> None:
    owner, actor = await api.register(), await api.register()
    ws = await api.workspace(owner)
    await api.add(owner, ws["id"], actor, actor_role.value)
    assert policy.can(actor_role, policy.Action.READ)
    data = await api.ok(
        "query($s: String!) { workspace(slug: $s) { viewerRole members { totalCount } } }",
        {"s": ws["slug"]},
        actor.token,
    )
    assert data["workspace"] == {"viewerRole": actor_role.value, "members": {"totalCount": 2}}
    assert (await api.workspace(actor))["viewerRole"] == "OWNER"
