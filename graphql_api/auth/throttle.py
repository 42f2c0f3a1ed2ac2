"""Login throttling, kept in PostgreSQL so it holds across workers and restarts.

Failures are counted three ways, each with its own ceiling (NIST SP 800-63B 5.2.2: throttle
guessing without letting a stranger lock a user out):

- per (account, client address): the low ceiling (LOGIN_MAX_FAILURES, 5). It stops one source
  guessing one password, and it is the only counter a stranger's failures share with the user
  only when they share the address; a success from that address clears it.
- per client address: LOGIN_MAX_FAILURES_PER_IP (50), against one source spraying many accounts.
- per account, across all addresses: a much higher ceiling (LOGIN_MAX_FAILURES_PER_ACCOUNT, 100),
  against a distributed guess at one account. A success does not clear it: it only expires.

A counter that reaches its ceiling refuses sign-ins on that key for one window (LOGIN_WINDOW_
SECONDS), then counting starts afresh: a cool-off, never a permanent lockout.

Failures are counted in the request's own transaction, outside the field's SAVEPOINT
(Context.keep_write): they count although the failed login leaves nothing else behind, and a
later alias of the same request sees them (mutation fields run one after another, so 100
aliased logins in one request meet the limit after a few). No second session is opened. The
counters' rows stay locked until the request commits: two requests failing sign-ins for the same
accounts as aliases in opposite orders can deadlock, which PostgreSQL breaks within a second by
failing one of them; its counts are then written on their own by the unit of work.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from db.repositories.login_throttles import LoginThrottleRepository
from db.session import DbSession
from graphql_api.context import Context
from graphql_api.errors import RateLimited
from graphql_api.validation import MAX_EMAIL


class LoginThrottle:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        settings = ctx.settings
        self.window = timedelta(seconds=settings.login_window_s)
        self.limits = {
            "pair": settings.login_max_failures,
            "ip": settings.login_max_failures_per_ip,
            "account": settings.login_max_failures_per_account,
        }

    @staticmethod
    def keys(email: str, ip: str) -> dict[str, str]:
        # No account's email is longer (validation.email); the cut keeps keys within the column.
        email = email[:MAX_EMAIL]
        return {"pair": f"account-ip:{email} {ip}", "ip": f"ip:{ip}", "account": f"account:{email}"}

    async def check(self, keys: dict[str, str]) -> None:
        repo = LoginThrottleRepository(self.ctx.db)
        until = await repo.locked_until(list(keys.values()))
        if until is not None:
            minutes = max(1, math.ceil((until - datetime.now(UTC)).total_seconds() / 60))
            raise RateLimited(f"too many failed sign-in attempts; try again in {minutes} minute(s)")

    def failed(self, keys: dict[str, str]) -> None:
        """Count the failure, to be written however the field ends."""
        limits, window = self.limits, self.window

        async def count(db: DbSession) -> None:
            repo = LoginThrottleRepository(db)
            for kind, key in keys.items():
                await repo.record_failure(key, limits[kind], window)

        self.ctx.keep_write(count)

    async def succeeded(self, keys: dict[str, str]) -> None:
        await LoginThrottleRepository(self.ctx.db).reset(keys["pair"])
