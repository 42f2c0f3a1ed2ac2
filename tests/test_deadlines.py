"""graphql_api.deadlines.Deadline against asyncio.timeout: the same outcome in every case, on
asyncio's own event loop and on uvloop's (the server's), and one timer serving many requests.

Each scenario runs once with asyncio.timeout and once with Deadline, on a fresh loop; the
outcomes (what the block saw, what escaped it, expired()) must be equal. Durations are short
and waits long beside them: whether a block is cut never depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import uvloop

from graphql_api import deadlines
from graphql_api.deadlines import Deadline

SHORT = 0.02  # a deadline that passes during a LONG wait
LONG = 30.0  # never reached: the test would hang, not pass
ONE, OTHER = 1.0, 1.5  # two durations side by side (each has its own timer)

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


def _timeout(seconds: float) -> Any:
    return asyncio.timeout(seconds)


def _lift(deadline: Any) -> None:
    if isinstance(deadline, Deadline):
        deadline.lift()
    elif not deadline.expired():  # context.commit_begins' former form
        deadline.reschedule(None)


KINDS = {"asyncio.timeout": _timeout, "Deadline": Deadline}


async def _outcome(body: Callable[[Any], Awaitable[object]], make: Any, seconds: float) -> tuple:
    """What happened: the block's result or the exception that escaped it, and expired()."""
    manager = make(seconds)
    try:
        async with manager as deadline:
            result: object = ("returned", await body(deadline))
    except BaseException as exc:
        result = ("raised", type(exc).__name__)
    return result, manager.expired()


async def _sleeps_long(_: Any) -> None:
    await asyncio.sleep(LONG)


async def _returns(_: Any) -> str:
    return "done"


async def _lifted_then_sleeps(deadline: Any) -> str:
    _lift(deadline)
    await asyncio.sleep(SHORT * 5)  # outlives the deadline it no longer has
    return "finished"


async def _sleeps_past_then_lifts(deadline: Any) -> str:
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.sleep(LONG)
    _lift(deadline)  # too late: the cancellation was sent (commit_begins after expiry)
    return "swallowed"


async def _catches_and_sleeps_again(_: Any) -> str:
    try:
        await asyncio.sleep(LONG)
    except asyncio.CancelledError:
        return "caught"
    return "woke"


async def _raises_inside(_: Any) -> None:
    raise ValueError("the block's own error")


async def _expires_then_raises(_: Any) -> None:
    try:
        await asyncio.sleep(LONG)
    finally:
        raise ValueError("raised while being cancelled")


async def _cancelled_from_outside(_: Any) -> None:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().call_soon(task.cancel)  # before the deadline
    await asyncio.sleep(LONG)


async def _cancelled_from_outside_after_expiry(_: Any) -> None:
    task = asyncio.current_task()
    assert task is not None
    try:
        await asyncio.sleep(LONG)
    finally:
        task.cancel()  # a second cancellation, from elsewhere: it must not become a timeout
        await asyncio.sleep(0)


SCENARIOS: dict[str, tuple[Callable[[Any], Awaitable[object]], float]] = {
    "expires": (_sleeps_long, SHORT),
    "ends in time": (_returns, LONG),
    "lifted, outlives it": (_lifted_then_sleeps, SHORT),
    "lifted after it passed": (_sleeps_past_then_lifts, SHORT),
    "cancellation caught inside": (_catches_and_sleeps_again, SHORT),
    "own error": (_raises_inside, LONG),
    "own error while expiring": (_expires_then_raises, SHORT),
    "cancelled from outside": (_cancelled_from_outside, LONG),
    "cancelled from outside too": (_cancelled_from_outside_after_expiry, SHORT),
}


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_a_deadline_behaves_as_asyncio_timeout(loop: str, scenario: str) -> None:
    body, seconds = SCENARIOS[scenario]
    outcomes = {}
    for kind, make in KINDS.items():
        with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
            outcomes[kind] = runner.run(_outcome(body, make, seconds))
    assert outcomes["Deadline"] == outcomes["asyncio.timeout"], outcomes
    assert outcomes["Deadline"][0][0] in {"returned", "raised"}


def test_the_scenarios_tell_the_outcomes_apart() -> None:
    """The comparison above could pass on two equally wrong answers; pin what they are."""
    expected = {
        "expires": (("raised", "TimeoutError"), True),
        "ends in time": (("returned", "done"), False),
        "lifted, outlives it": (("returned", "finished"), False),
        "lifted after it passed": (("returned", "swallowed"), True),
        "cancellation caught inside": (("returned", "caught"), True),
        "own error": (("raised", "ValueError"), False),
        "own error while expiring": (("raised", "ValueError"), True),
        "cancelled from outside": (("raised", "CancelledError"), False),
        "cancelled from outside too": (("raised", "CancelledError"), True),
    }
    seen = {}
    for scenario, (body, seconds) in SCENARIOS.items():
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            seen[scenario] = runner.run(_outcome(body, Deadline, seconds))
    assert seen == expected


def _pending(loop: asyncio.AbstractEventLoop) -> int:
    return sum(len(sweep._pending) for sweep in deadlines._SWEEPS.get(loop, {}).values())


async def timed_request(
    make: Callable[[float], Any], outcomes: dict[str, Any], name: str, seconds: float, work: float
) -> None:
    """A request of `work` seconds under a deadline of `seconds`: "ok" or "timeout"."""
    try:
        async with make(seconds):
            await asyncio.sleep(work)
        outcomes[name] = "ok"
    except TimeoutError:
        outcomes[name] = "timeout"


async def _many() -> dict[str, Any]:
    """Requests that start in turn, most ending in time, some not, under two durations."""
    loop = asyncio.get_running_loop()
    outcomes: dict[str, Any] = {}

    def request(name: str, seconds: float, work: float) -> Awaitable[None]:
        return timed_request(Deadline, outcomes, name, seconds, work)

    tasks = []
    for i in range(200):  # ends in time: leave before the first timer fires
        tasks.append(asyncio.create_task(request(f"quick {i}", ONE, 0)))
    # The timer was armed for the first quick one; it fires with none of them left, and must
    # re-arm for these later ones.
    await asyncio.sleep(SHORT)
    slow = [
        asyncio.create_task(request("late, slow", ONE, LONG)),
        asyncio.create_task(request("other duration, slow", OTHER, LONG)),
    ]
    tasks.append(asyncio.create_task(request("late, in time", ONE, 0)))
    tasks.append(asyncio.create_task(request("other duration, in time", OTHER, 0)))
    await asyncio.gather(*tasks)
    during = _pending(loop)
    await asyncio.gather(*slow)
    return {"outcomes": outcomes, "pending during": during, "pending after": _pending(loop)}


@pytest.mark.parametrize("loop", LOOPS)
def test_one_timer_serves_many_requests_and_keeps_none(loop: str) -> None:
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        seen = runner.run(_many())
    outcomes = seen["outcomes"]
    assert outcomes.pop("late, slow") == "timeout"
    assert outcomes.pop("other duration, slow") == "timeout"
    assert set(outcomes.values()) == {"ok"} and len(outcomes) == 202
    assert seen["pending during"] == 2  # the two slow ones; the others left as they ended
    assert seen["pending after"] == 0


async def _lifted_requests_leave() -> tuple[int, int]:
    loop = asyncio.get_running_loop()
    held = asyncio.Event()

    async def request() -> None:
        async with Deadline(LONG) as deadline:
            deadline.lift()
            await held.wait()

    tasks = [asyncio.create_task(request()) for _ in range(50)]
    await asyncio.sleep(0)
    during = _pending(loop)
    held.set()
    await asyncio.gather(*tasks)
    return during, _pending(loop)


def test_a_lifted_deadline_is_forgotten_at_once() -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(_lifted_requests_leave()) == (0, 0)


async def _deadline_outside_a_task() -> None:
    loop = asyncio.get_running_loop()
    coroutine = Deadline(1).__aenter__()
    # Run the entry from a plain callback: no current task.
    future: asyncio.Future[BaseException] = loop.create_future()

    def enter() -> None:
        try:
            coroutine.send(None)
        except BaseException as exc:
            future.set_result(exc)

    loop.call_soon(enter)
    raised = await future
    assert isinstance(raised, RuntimeError)


def test_a_deadline_needs_a_task() -> None:
    asyncio.run(_deadline_outside_a_task())
