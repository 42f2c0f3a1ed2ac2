"""Accounts: registration, sign-in, tokens, refresh rotation, throttling."""

from __future__ import annotations

import time
import uuid
from contextlib import AsyncExitStack
from typing import Any

import jwt
import pytest
from argon2 import PasswordHasher, Type, extract_parameters
from sqlalchemy.ext.asyncio import AsyncConnection

from db.models import User
from db.repositories import UserRepository
from db.session import DbSession
from graphql_api.auth.tokens import ALGORITHM, AUDIENCE, ISSUER
from graphql_api.settings import DEV_SECRET
from tests.conftest import joined_client, live_client
from tests.gql import PASSWORD, REGISTER, Api, error_codes

VIEWER = "{ viewer { id email displayName } }"
LOGIN = """
mutation($email: String!, $password: String!) {
  login(input: {email: $email, password: $password}) {
    accessToken refreshToken user { id } userErrors { code message field }
  }
}"""
REFRESH = """
mutation($t: String!) {
  refreshSession(input: {refreshToken: $t}) {
    accessToken refreshToken userErrors { code message }
  }
}"""
LOGOUT = (
    "mutation($t: String!) { logout(input: {refreshToken: $t}) { success userErrors { code } } }"
)


def register_input(**overrides: Any) -> dict[str, Any]:
    return {
        "input": {
            "email": "new@example.test",
            "password": PASSWORD,
            "displayName": "New",
            **overrides,
        }
    }


async def test_register_then_viewer(api: Api) -> None:
    data = await api.ok(
        REGISTER, register_input(email="  Mixed.Case@Example.TEST ", displayName="  Ada  ")
    )
    payload = data["register"]
    assert payload["user"]["email"] == "mixed.case@example.test"
    assert payload["user"]["displayName"] == "Ada"
    assert payload["accessToken"] and payload["refreshToken"] and payload["expiresAt"]
    me = await api.ok(VIEWER, token=payload["accessToken"])
    assert me["viewer"] == payload["user"]


async def test_anonymous_viewer_is_null(api: Api) -> None:
    assert (await api.ok(VIEWER))["viewer"] is None


async def test_email_is_unique_case_insensitively(api: Api) -> None:
    await api.ok(REGISTER, register_input(email="dup@example.test"))
    body = await api.post(REGISTER, register_input(email="DUP@example.test"))
    errors = body["data"]["register"]["userErrors"]
    assert errors == [
        {"code": "ALREADY_EXISTS", "message": "user already exists", "field": None}
    ] or [(e["code"], e["field"]) for e in errors] == [("ALREADY_EXISTS", ["input", "email"])]
    assert body["data"]["register"]["accessToken"] is None


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"password": "x" * 7}, "password"),
        ({"password": "x" * 257}, "password"),
        ({"email": "not-an-email"}, "email"),
        ({"displayName": "   "}, "displayName"),
        ({"displayName": "x" * 101}, "displayName"),
    ],
)
async def test_register_validation(api: Api, overrides: dict[str, str], field: str) -> None:
    body = await api.post(REGISTER, register_input(**overrides))
    errors = body["data"]["register"]["userErrors"]
    assert [(e["code"], e["field"]) for e in errors] == [("INVALID_INPUT", ["input", field])]


async def test_password_length_bounds_are_inclusive(api: Api) -> None:
    await api.ok(REGISTER, register_input(email="p8@example.test", password="x" * 8))
    await api.ok(REGISTER, register_input(email="p256@example.test", password="x" * 256))


async def test_stored_hash_is_argon2id_with_owasp_parameters(api: Api, db: DbSession) -> None:
    await api.ok(REGISTER, register_input(email="hash@example.test"))
    user = await UserRepository(db).get_by_email("hash@example.test")
    assert user is not None and user.password_hash.startswith("$argon2id$")
    params = extract_parameters(user.password_hash)
    assert params.type is Type.ID
    assert params.memory_cost >= 19 * 1024 and params.time_cost >= 2 and params.parallelism >= 1
    assert PASSWORD not in user.password_hash


async def test_login_and_same_answer_for_unknown_email_and_wrong_password(api: Api) -> None:
    account = await api.register()
    ok = (await api.ok(LOGIN, {"email": account.email.upper(), "password": PASSWORD}))["login"]
    assert ok["user"]["id"] == account.id
    wrong = (await api.post(LOGIN, {"email": account.email, "password": "wrong password"}))["data"][
        "login"
    ]
    unknown = (await api.post(LOGIN, {"email": "nobody@example.test", "password": PASSWORD}))[
        "data"
    ]["login"]
    assert wrong == unknown
    assert wrong["userErrors"][0]["code"] == "INVALID_CREDENTIALS"
    assert wrong["accessToken"] is None


async def test_weak_hash_is_upgraded_at_login(api: Api, db: DbSession) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1, type=Type.ID)
    await UserRepository(db).add(
        User(email="old@example.test", display_name="Old", password_hash=weak.hash(PASSWORD))
    )
    await api.ok(LOGIN, {"email": "old@example.test", "password": PASSWORD})
    user = await UserRepository(db).get_by_email("old@example.test")
    assert user is not None
    params = extract_parameters(user.password_hash)
    assert params.memory_cost >= 19 * 1024 and params.time_cost >= 2


def _token(claims: dict[str, Any], key: str = DEV_SECRET, alg: str = ALGORITHM) -> str:
    return jwt.encode(claims, key, algorithm=alg)


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": str(uuid.uuid4()),
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 60,
        **overrides,
    }


def _alg_none(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]


BAD_TOKENS = {
    "alg none": lambda: _alg_none(_claims()),
    "wrong key": lambda: _token(_claims(), key="another-key-of-sufficient-length!!"),
    "wrong audience": lambda: _token(_claims(aud="someone-else")),
    "wrong issuer": lambda: _token(_claims(iss="someone-else")),
    "expired": lambda: _token(_claims(iat=int(time.time()) - 3600, exp=int(time.time()) - 60)),
    "no exp": lambda: _token({k: v for k, v in _claims().items() if k != "exp"}),
    "sub not a uuid": lambda: _token(_claims(sub="admin")),
    "malformed": lambda: "not.a.jwt",
    "garbage": lambda: "..%%..",
    "empty segments": lambda: "a..b",
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
async def test_every_bad_token_is_the_same_unauthenticated_error(api: Api, case: str) -> None:
    token = BAD_TOKENS[case]()
    for query in (VIEWER, "{ workspaces { totalCount } }"):
        body = await api.post(query, token=token)
        assert error_codes(body) == ["UNAUTHENTICATED"], body
        assert body["errors"][0]["message"] == "sign in first: a valid access token is required"


async def test_wrong_scheme_is_unauthenticated(api: Api) -> None:
    response = await api.http.post(
        "/graphql", json={"query": VIEWER}, headers={"authorization": "Basic dXNlcjpwYXNz"}
    )
    assert error_codes(response.json()) == ["UNAUTHENTICATED"]


@pytest.mark.parametrize(
    "query",
    [
        "{ workspaces { totalCount } }",
        '{ workspace(slug: "x") { id } }',
        '{ node(id: "x") { id } }',
        'mutation { createWorkspace(input: {name: "x"}) { workspace { id } } }',
    ],
)
async def test_anonymous_may_only_register_login_refresh(api: Api, query: str) -> None:
    body = await api.post(query)
    assert error_codes(body) == ["UNAUTHENTICATED"]


async def test_refresh_rotates_and_reuse_revokes_the_family(live_api: Api) -> None:
    account = await live_api.register()
    first = (await live_api.ok(REFRESH, {"t": account.refresh_token}))["refreshSession"]
    assert first["refreshToken"] != account.refresh_token
    assert (await live_api.ok(VIEWER, token=first["accessToken"]))["viewer"]["id"] == account.id
    second = (await live_api.ok(REFRESH, {"t": first["refreshToken"]}))["refreshSession"]

    # The first token again: someone kept a copy. It fails, and so does every token of its family.
    reused = (await live_api.post(REFRESH, {"t": account.refresh_token}))["data"]["refreshSession"]
    assert reused["userErrors"][0]["code"] == "INVALID_CREDENTIALS"
    after = (await live_api.post(REFRESH, {"t": second["refreshToken"]}))["data"]["refreshSession"]
    assert after["userErrors"][0]["code"] == "INVALID_CREDENTIALS"


TWICE_IN_ONE_REQUEST = """
mutation($t: String!) {
  a: refreshSession(input: {refreshToken: $t}) { accessToken refreshToken userErrors { code } }
  b: refreshSession(input: {refreshToken: $t}) { accessToken refreshToken userErrors { code } }
}"""


async def test_one_token_twice_in_one_request_is_reuse_not_a_deadlock(live_api: Api) -> None:
    # The second alias meets the token its sibling spent, in the same transaction: theft
    # detection must revoke the family there and then, not wait on the request's own row lock.
    account = await live_api.register()
    body = await live_api.post(TWICE_IN_ONE_REQUEST, {"t": account.refresh_token})
    assert "errors" not in body, body
    first, second = body["data"]["a"], body["data"]["b"]
    assert first["userErrors"] == [] and first["refreshToken"]
    assert second["userErrors"] == [{"code": "INVALID_CREDENTIALS"}]
    assert second["refreshToken"] is None
    # The family is revoked, the pair the first alias received included.
    for token in (first["refreshToken"], account.refresh_token):
        again = (await live_api.post(REFRESH, {"t": token}))["data"]["refreshSession"]
        assert again["userErrors"][0]["code"] == "INVALID_CREDENTIALS"


async def test_reuse_revokes_the_family_even_when_the_operation_fails(live_api: Api) -> None:
    # A top-level error rolls the operation back; the revocation that reuse triggered must hold.
    account = await live_api.register()
    rotated = (await live_api.ok(REFRESH, {"t": account.refresh_token}))["refreshSession"]
    failing = """
    mutation($t: String!) {
      refreshSession(input: {refreshToken: $t}) { userErrors { code } }
      createWorkspace(input: {name: "x"}) { workspace { id } }
    }"""
    body = await live_api.post(failing, {"t": account.refresh_token})
    assert error_codes(body) == ["UNAUTHENTICATED"]
    after = (await live_api.post(REFRESH, {"t": rotated["refreshToken"]}))["data"]
    assert after["refreshSession"]["userErrors"][0]["code"] == "INVALID_CREDENTIALS"


async def test_logout_revokes_the_family(live_api: Api) -> None:
    account = await live_api.register()
    rotated = (await live_api.ok(REFRESH, {"t": account.refresh_token}))["refreshSession"]
    assert (await live_api.ok(LOGOUT, {"t": rotated["refreshToken"]}))["logout"]["success"]
    body = await live_api.post(REFRESH, {"t": rotated["refreshToken"]})
    assert body["data"]["refreshSession"]["userErrors"][0]["code"] == "INVALID_CREDENTIALS"
    # Logging out again is harmless.
    assert (await live_api.ok(LOGOUT, {"t": rotated["refreshToken"]}))["logout"]["success"]


async def test_unknown_refresh_token(api: Api) -> None:
    body = await api.post(REFRESH, {"t": "made-up"})
    assert body["data"]["refreshSession"]["userErrors"][0]["code"] == "INVALID_CREDENTIALS"


async def test_login_throttling_per_account(live_api: Api) -> None:
    account = await live_api.register()
    codes = []
    for _ in range(7):
        body = await live_api.post(LOGIN, {"email": account.email, "password": "wrong password"})
        codes.append(body["data"]["login"]["userErrors"][0]["code"])
    assert codes == ["INVALID_CREDENTIALS"] * 5 + ["RATE_LIMITED"] * 2
    # During the cool-off even the right password is refused.
    body = await live_api.post(LOGIN, {"email": account.email, "password": PASSWORD})
    assert body["data"]["login"]["userErrors"][0]["code"] == "RATE_LIMITED"


async def from_address(
    stack: AsyncExitStack, connection: AsyncConnection, address: str, **settings: Any
) -> Api:
    """A client at `address`, on the same data as the test's others."""
    return Api(
        await stack.enter_async_context(joined_client(connection, address=address, **settings))
    )


async def sign_in(api: Api, email: str, password: str) -> str:
    body = await api.post(LOGIN, {"email": email, "password": password})
    errors = body["data"]["login"]["userErrors"]
    return str(errors[0]["code"]) if errors else "OK"


async def test_a_stranger_failing_cannot_lock_the_user_out(connection: AsyncConnection) -> None:
    async with AsyncExitStack() as stack:
        user_at_home = await from_address(stack, connection, "198.51.100.7")
        attacker = await from_address(stack, connection, "203.0.113.66")
        account = await user_at_home.register()
        codes = [await sign_in(attacker, account.email, "wrong password") for _ in range(7)]
        # The attacker's address is throttled for this account after 5 failures...
        assert codes == ["INVALID_CREDENTIALS"] * 5 + ["RATE_LIMITED"] * 2
        assert await sign_in(attacker, account.email, PASSWORD) == "RATE_LIMITED"
        # ...and the user, from their own address, signs in as ever.
        assert await sign_in(user_at_home, account.email, PASSWORD) == "OK"


async def test_a_success_clears_its_own_address_only(connection: AsyncConnection) -> None:
    async with AsyncExitStack() as stack:
        user, attacker = (
            await from_address(stack, connection, "198.51.100.7"),
            await from_address(stack, connection, "203.0.113.66"),
        )
        account = await user.register()
        for _ in range(4):
            assert await sign_in(user, account.email, "typo typo") == "INVALID_CREDENTIALS"
            assert await sign_in(attacker, account.email, "guess guess") == "INVALID_CREDENTIALS"
        assert await sign_in(user, account.email, PASSWORD) == "OK"
        # The user's slate is clean (4 more typos do not reach 5); the attacker's is not.
        for _ in range(4):
            assert await sign_in(user, account.email, "typo typo") == "INVALID_CREDENTIALS"
        assert await sign_in(attacker, account.email, "guess guess") == "INVALID_CREDENTIALS"
        assert await sign_in(attacker, account.email, "guess guess") == "RATE_LIMITED"
        assert await sign_in(user, account.email, PASSWORD) == "OK"


async def test_the_per_account_ceiling_throttles_a_distributed_guess(
    connection: AsyncConnection,
) -> None:
    # With a ceiling of 6 failures per account (default 100) and one failure per address.
    async with AsyncExitStack() as stack:
        ceiling = {"login_max_failures_per_account": 6}
        bots = [
            await from_address(stack, connection, f"203.0.113.{i}", **ceiling) for i in range(1, 7)
        ]
        user = await from_address(stack, connection, "198.51.100.7", **ceiling)
        account = await user.register()
        for bot in bots[:5]:
            assert await sign_in(bot, account.email, "guess guess") == "INVALID_CREDENTIALS"
        assert await sign_in(user, account.email, PASSWORD) == "OK"  # below the ceiling
        assert await sign_in(bots[5], account.email, "guess guess") == "INVALID_CREDENTIALS"
        # The sixth failure reached it: the account cools off, from every address.
        assert await sign_in(bots[0], account.email, PASSWORD) == "RATE_LIMITED"
        assert await sign_in(user, account.email, PASSWORD) == "RATE_LIMITED"


async def test_an_overlong_email_is_only_a_wrong_one(api: Api) -> None:
    # Longer than any account's: counted like any failure, never an error of the throttle.
    assert await sign_in(api, "x" * 1000 + "@example.test", "guess guess") == "INVALID_CREDENTIALS"


def hundred_logins(email: str) -> str:
    fields = "\n".join(
        f'a{i}: login(input: {{email: "{email}", password: "guess-{i:03d}"}}) '
        "{ accessToken userErrors { code } }"
        for i in range(99)
    )
    fields += (
        f'\nlast: login(input: {{email: "{email}", password: "{PASSWORD}"}}) '
        "{ accessToken userErrors { code } }"
    )
    return f"mutation {{ {fields} }}"


async def test_aliased_logins_in_one_request_cannot_try_100_passwords(live_api: Api) -> None:
    account = await live_api.register()
    # Refused whole by the document limits (tokens, aliases): not one password is tried...
    body = await live_api.post(hundred_logins(account.email))
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    # ...so the account is not even locked.
    assert (await live_api.ok(LOGIN, {"email": account.email, "password": PASSWORD}))["login"][
        "accessToken"
    ]


async def test_with_the_document_limits_raised_throttling_still_stops_them(
    fresh_database_url: str,
) -> None:
    async with live_client(
        fresh_database_url, max_aliases=200, max_tokens=50_000, max_document_chars=100_000
    ) as http:
        api = Api(http)
        account = await api.register()
        body = await api.post(hundred_logins(account.email))
    codes = [v["userErrors"][0]["code"] if v["userErrors"] else "OK" for v in body["data"].values()]
    assert codes.count("INVALID_CREDENTIALS") == 5
    assert codes.count("RATE_LIMITED") == 95
    assert body["data"]["last"]["accessToken"] is None  # the right password came too late


async def test_login_throttling_per_client_address(live_api: Api) -> None:
    # One address spraying many accounts is stopped too (limit 50 per window by default).
    emails = [f"spray{i}@example.test" for i in range(52)]
    codes = []
    for email in emails:
        body = await live_api.post(LOGIN, {"email": email, "password": "x" * 8})
        codes.append(body["data"]["login"]["userErrors"][0]["code"])
    assert codes[:50] == ["INVALID_CREDENTIALS"] * 50
    assert codes[50:] == ["RATE_LIMITED"] * 2
