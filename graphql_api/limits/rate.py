"""Rate limiting by cost, shared by every server process through PostgreSQL.

Each process reserves points for a client in chunks (one small transaction per chunk, not per
request) and spends them locally. Reservations never exceed the budget, so the budget holds across
processes; points reserved by a process that stops are simply used up, so it holds across
restarts too (erring on the strict side).

A client's chunks start small and double with each reservation in a window, up to a twentieth of
the budget: a light client holds little it has not spent, and a busy one reserves a handful of
times per window instead of every few requests (while a reservation is made, that client's
requests in this process wait for it; other clients' do not).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.repositories.rate_limits import RateLimitRepository
from db.session import DbSession
from graphql_api.observability.metrics import RATE_LIMITED


@dataclass
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: int  # Unix time when the window ends

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """The rate-limit headers of the response, as ASGI header pairs."""
        pairs = [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(max(0, self.remaining)).encode()),
            (b"x-ratelimit-reset", str(self.reset_at).encode()),
        ]
        if not self.allowed:
            retry = max(1, self.reset_at - int(time.time()))
            pairs.append((b"retry-after", str(retry).encode()))
        return pairs

    def headers(self) -> dict[str, str]:
        return {name.decode(): value.decode() for name, value in self.raw_headers()}


@dataclass
class _Lease:
    window: int
    chunk: int  # the next reservation's size
    granted: int = 0
    spent: int = 0
    reserved_everywhere: int = 0
    # The budget ran out for this window: refuse without asking PostgreSQL again, so a client
    # hammering past its limit costs no database round trips.
    exhausted: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def unspent(self) -> int:
        return self.granted - self.spent


class RateLimiter:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], budget: int, window_s: int
    ) -> None:
        self.sessionmaker = sessionmaker
        self.budget = budget
        self.window_s = window_s
        self.first_chunk = max(1, min(100, budget // 20))
        self.max_chunk = max(self.first_chunk, budget // 20)
        self.leases: dict[str, _Lease] = {}

    def charge_now(self, key: str, points: int) -> Decision | None:
        """charge's decision without waiting, when this process holds enough of the client's
        points (or knows the budget is spent); None when it must reserve first (charge)."""
        window = int(time.time()) // self.window_s * self.window_s
        lease = self.leases.get(key)
        if lease is None or lease.window != window:
            return None
        if lease.unspent < points and not lease.exhausted:
            return None
        return self._decide(lease, points, window)

    async def charge(self, key: str, points: int) -> Decision:
        window = int(time.time()) // self.window_s * self.window_s
        lease = self.leases.get(key)
        if lease is None or lease.window != window:
            if lease is not None:
                self.leases = {k: v for k, v in self.leases.items() if v.window == window}
            lease = self.leases[key] = _Lease(window, self.first_chunk)
        if lease.unspent < points and not lease.exhausted:
            async with lease.lock:
                # Another request of this client may have reserved while this one waited.
                if lease.unspent < points and not lease.exhausted:
                    granted, everywhere = await self._reserve(
                        key, window, max(points - lease.unspent, lease.chunk)
                    )
                    lease.chunk = min(lease.chunk * 2, self.max_chunk)
                    lease.granted += granted
                    lease.reserved_everywhere = everywhere
                    lease.exhausted = everywhere >= self.budget and lease.unspent < points
        return self._decide(lease, points, window)

    def _decide(self, lease: _Lease, points: int, window: int) -> Decision:
        # No await here: the check and the spend cannot interleave with another request.
        allowed = lease.unspent >= points
        if allowed:
            lease.spent += points
        else:
            RATE_LIMITED.inc()
        return Decision(
            allowed=allowed,
            limit=self.budget,
            remaining=self.budget - lease.reserved_everywhere + lease.unspent,
            reset_at=window + self.window_s,
        )

    async def _reserve(self, key: str, window: int, want: int) -> tuple[int, int]:
        async with self.sessionmaker() as session:
            # The client's requests wait for this commit, and need not wait for the disk too:
            # a reservation that a crash loses lets the client spend one chunk more, once.
            await session.execute(text("SET LOCAL synchronous_commit TO off"))
            granted = await RateLimitRepository(DbSession(session)).reserve(
                key, datetime.fromtimestamp(window, UTC), want, self.budget
            )
            await session.commit()
        return granted
