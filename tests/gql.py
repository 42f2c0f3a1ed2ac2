"""A GraphQL client over the real ASGI app, as a frontend would use it."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import httpx

PASSWORD = "correct horse battery"
_seq = itertools.count(1)

REGISTER = """
mutation($input: RegisterInput!) {
  register(input: $input) {
    accessToken refreshToken expiresAt
    user { id email displayName }
    userErrors { code message field }
  }
}"""

CREATE_WORKSPACE = """
mutation($input: CreateWorkspaceInput!) {
  createWorkspace(input: $input) {
    workspace { id slug name viewerRole }
    userErrors { code message field }
  }
}"""

ADD_MEMBER = """
mutation($input: AddMemberInput!) {
  addMember(input: $input) {
    membership { role user { id email } }
    userErrors { code message field }
  }
}"""

CHANGE_MEMBER_ROLE = """
mutation($input: ChangeMemberRoleInput!) {
  changeMemberRole(input: $input) { membership { role user { id } } userErrors { code message field } }
}"""
REMOVE_MEMBER = """
mutation($input: RemoveMemberInput!) {
  removeMember(input: $input) { removedUserId userErrors { code message field } }
}"""


@dataclass
class Account:
    id: str
    email: str
    token: str
    refresh_token: str


class Api:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        headers = dict(headers or {})
        if token:
            headers["authorization"] = f"Bearer {token}"
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def ok(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        """Data of a request that must succeed without any error at all."""
        body = await self.post(query, variables, token)
        assert "errors" not in body, body
        for value in body["data"].values():
            if isinstance(value, dict) and value.get("userErrors"):
                raise AssertionError(value["userErrors"])
        data: dict[str, Any] = body["data"]
        return data

    async def sign_in(self, email: str, password: str) -> str:
        """An existing account's access token."""
        login = await self.ok(
            "mutation($e: String!, $p: String!) "
            "{ login(input: {email: $e, password: $p}) { accessToken } }",
            {"e": email, "p": password},
        )
        token: str = login["login"]["accessToken"]
        return token

    async def register(self, name: str | None = None) -> Account:
        n = next(_seq)
        name = name or f"user{n}"
        email = f"{name}-{n}@example.test"
        data = await self.ok(
            REGISTER, {"input": {"email": email, "password": PASSWORD, "displayName": name}}
        )
        r = data["register"]
        return Account(r["user"]["id"], email, r["accessToken"], r["refreshToken"])

    async def workspace(self, owner: Account, name: str = "Team") -> dict[str, Any]:
        data = await self.ok(CREATE_WORKSPACE, {"input": {"name": name}}, owner.token)
        ws: dict[str, Any] = data["createWorkspace"]["workspace"]
        return ws

    async def add(self, owner: Account, workspace_id: str, member: Account, role: str) -> None:
        await self.ok(
            ADD_MEMBER,
            {"input": {"workspaceId": workspace_id, "email": member.email, "role": role}},
            owner.token,
        )


def error_codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors", [])]


CREATE_PROJECT = """
mutation($input: CreateProjectInput!) {
  createProject(input: $input) { project { id key name description archivedAt version } userErrors { code message field } }
}"""
CREATE_LABEL = """
mutation($input: CreateLabelInput!) {
  createLabel(input: $input) { label { id name color } userErrors { code message field } }
}"""
TASK_FIELDS = """id number identifier title description status priority dueAt version deletedAt
  assignee { id } labels { id name } project { id key }"""
CREATE_TASK = f"""
mutation($input: CreateTaskInput!) {{
  createTask(input: $input) {{ task {{ {TASK_FIELDS} }} userErrors {{ code message field }} }}
}}"""
UPDATE_TASK = f"""
mutation($input: UpdateTaskInput!) {{
  updateTask(input: $input) {{ task {{ {TASK_FIELDS} }} userErrors {{ code message field }} }}
}}"""
CREATE_COMMENT = """
mutation($input: CreateCommentInput!) {
  createComment(input: $input) { comment { id body author { id } } userErrors { code message field } }
}"""


async def project(api: Api, owner: Account, workspace_id: str, key: str = "WEB") -> dict[str, Any]:
    data = await api.ok(
        CREATE_PROJECT,
        {"input": {"workspaceId": workspace_id, "key": key, "name": f"Project {key}"}},
        owner.token,
    )
    result: dict[str, Any] = data["createProject"]["project"]
    return result


async def label(
    api: Api, actor: Account, workspace_id: str, name: str, color: str = "#112233"
) -> dict[str, Any]:
    data = await api.ok(
        CREATE_LABEL,
        {"input": {"workspaceId": workspace_id, "name": name, "color": color}},
        actor.token,
    )
    result: dict[str, Any] = data["createLabel"]["label"]
    return result


async def task(api: Api, actor: Account, project_id: str, **fields: Any) -> dict[str, Any]:
    data = await api.ok(
        CREATE_TASK, {"input": {"projectId": project_id, "title": "A task", **fields}}, actor.token
    )
    result: dict[str, Any] = data["createTask"]["task"]
    return result


async def comment(
    api: Api, actor: Account, task_id: str, body: str = "A comment"
) -> dict[str, Any]:
    data = await api.ok(CREATE_COMMENT, {"input": {"taskId": task_id, "body": body}}, actor.token)
    result: dict[str, Any] = data["createComment"]["comment"]
    return result


def user_errors(body: dict[str, Any], field: str) -> list[tuple[str, list[str] | None]]:
    return [(e["code"], e["field"]) for e in body["data"][field]["userErrors"]]
