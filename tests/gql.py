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
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {token}"} if token else {}
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
