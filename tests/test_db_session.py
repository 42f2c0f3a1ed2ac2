"""The request's DbSession when an operation ends while a sibling field still reads (a
non-null field's error ends execution early): the unit of work's `ending()` waits for the
statement in flight, and no field may use the session afterwards. Without it the rollback met
the sibling's connection checkout and the request failed with INTERNAL (found by
tests/test_fuzz.py: "This session is provisioning a new connection")."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.session import DbSession, OperationEnded


async def test_ending_waits_for_a_statement_in_flight_then_refuses_new_ones(
    session: AsyncSession,
) -> None:
    db = DbSession(session)
    entered = asyncio.Event()

    async def end() -> None:
        async with db.ending():
            entered.set()

    async with db.lock:  # a sibling field's statement, in flight
        ending = asyncio.create_task(end())
        for _ in range(5):
            await asyncio.sleep(0)  # the ending task runs as far as it can
        assert not entered.is_set()  # it waits for the statement
    await ending
    assert entered.is_set()
    with pytest.raises(OperationEnded):
        await db.execute(select(1))
    with pytest.raises(OperationEnded):
        await db.scalar_sql("SELECT 1", [])
