"""Behind a proxy: the client's address comes from X-Forwarded-For only when the peer is a
trusted proxy (FORWARDED_ALLOW_IPS), as the anonymous rate limit and sign-in throttling see it."""

from __future__ import annotations

import httpx
import pytest

from tests.servers import serving

ANONYMOUS = {"query": "{ __typename }"}


async def statuses(host: str, forwarded_for: str, times: int) -> list[int]:
    async with httpx.AsyncClient(base_url=f"http://{host}") as http:
        return [
            (
                await http.post(
                    "/graphql", json=ANONYMOUS, headers={"x-forwarded-for": forwarded_for}
                )
            ).status_code
            for _ in range(times)
        ]


@pytest.mark.parametrize("trusted", [True, False])
async def test_x_forwarded_for_counts_only_from_a_trusted_proxy(
    fresh_database_url: str, trusted: bool
) -> None:
    env = {"RATE_LIMIT_POINTS": "2"}  # per client address, for anonymous requests
    if trusted:
        env["FORWARDED_ALLOW_IPS"] = "127.0.0.1"  # the test is the proxy
    with serving(fresh_database_url, **env) as host:
        # One client behind the proxy spends its budget...
        assert await statuses(host, "203.0.113.7", 3) == [200, 200, 429]
        # ...and another one behind it has a budget of its own, when the proxy is trusted.
        # Untrusted, the header is ignored: both are the proxy's address, already spent, and
        # no client can pick a fresh address by writing the header itself.
        assert await statuses(host, "198.51.100.20", 1) == ([200] if trusted else [429])
