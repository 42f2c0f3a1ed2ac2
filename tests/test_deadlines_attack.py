"""An outside review of graphql_api.deadlines.Deadline, side by side with asyncio.timeout on both
event loops (asyncio's and uvloop's, the server's).

The tests that fail document bugs; the others guard what holds. Whether a block is cut never
depends on the machine's speed: a deadline that must pass is passed by blocking the loop well
beyond it, and one that must not is 30 s away."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import Any

import pytest
import uvloop

from graphql_api import deadlines
from graphql_api.deadlines import Deadline
from tests.test_deadlines import timed_request

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
KINDS: dict[str, Callable[[float], Any]] = {
    "asyncio.timeout": asyncio.timeout,
    "Deadline": Deadline,
}
LONG = 30.0


def hold_the_loop(seconds: float) -> None:
    """Blocks the event loop (a slow callback, a GC pause, a burst of CPU work)."""
    time.sleep(seconds)


def _run(loop: str, main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        return runner.run(main())


def _side_by_side(
    loop: str, scenario: Callable[[Callable[[float], Any]], Coroutine[Any, Any, Any]]
) -> None:
    outcomes = {kind: _run(loop, partial(scenario, make)) for kind, make in KINDS.items()}
    assert outcomes["Deadline"] == outcomes["asyncio.timeout"], outcomes


# -- 1. Overdue deadlines expire one loop iteration at a time --------------------------------


async def _overdue(make: Callable[[float], Any]) -> list[int]:
    """Requests begun in 40 different loop iterations (each a millisecond and more apart, so
    that no two share a start time on either loop); then the loop is held up (a slow callback,
    a GC pause, a burst of work) well past all their deadlines. How many have expired after
    each of the next few loop iterations?"""
    managers: list[Any] = []

    async def request() -> None:
        manager = make(1.0)
        managers.append(manager)
        with contextlib.suppress(TimeoutError):
            async with manager:
                await asyncio.sleep(LONG)

    tasks = []
    for _ in range(40):
        tasks.append(asyncio.create_task(request()))
        await asyncio.sleep(0)
        hold_the_loop(0.0015)
    assert not any(m.expired() for m in managers)  # all started well within their deadlines
    hold_the_loop(1.5)  # the loop is held up: every deadline is now past
    expired_after = []
    for _ in range(5):
        await asyncio.sleep(0)
        expired_after.append(sum(m.expired() for m in managers))
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return expired_after


@pytest.mark.parametrize("loop", LOOPS)
def test_overdue_deadlines_all_expire_as_soon_as_the_loop_runs(loop: str) -> None:
    """asyncio.timeout: every overdue request is cancelled in the first loop iteration after the
    hold-up (each has its own timer, all due). Deadline's sweep expires only the deadlines due
    by the time its timer was set for (`due_by = self._timer_when`, deadlines.py:56), then
    re-arms for the next one (deadlines.py:66), which the loop runs in its next iteration: one
    start time per iteration. Under load (every iteration costing milliseconds) the overdue
    requests of a stall are cancelled one by one, long after their deadline: 100 of them took
    0.55 s more with 5 ms iterations, against 0.01 s with asyncio.timeout, on both loops."""
    seen = {kind: _run(loop, partial(_overdue, make)) for kind, make in KINDS.items()}
    assert seen["asyncio.timeout"][-1] == 40  # the reference: all of them, at once
    assert seen["Deadline"] == seen["asyncio.timeout"], seen


# -- 2. Every event loop that ever ran a Deadline is kept alive ------------------------------


async def _one_request(make: Callable[[float], Any]) -> weakref.ref[asyncio.AbstractEventLoop]:
    async with make(LONG):
        await asyncio.sleep(0)
    return weakref.ref(asyncio.get_running_loop())


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("kind", KINDS)
def test_a_finished_event_loop_is_not_kept_alive(loop: str, kind: str) -> None:
    """_SWEEPS is a WeakKeyDictionary keyed by the loop, but its values (the _Sweep objects)
    hold the loop strongly (_Sweep._loop, deadlines.py:31, and the armed TimerHandle kept in
    _Sweep._timer, deadlines.py:50), so the key never dies: every loop
    that ever ran a Deadline stays in memory for good, with its selector, its handles and
    whatever a deadline left pending in it. asyncio.timeout keeps nothing. A process that runs
    loops in turn (asyncio.run per job or per thread, a test suite) grows with each."""
    ref = _run(loop, partial(_one_request, KINDS[kind]))
    gc.collect()
    assert ref() is None, f"the {loop} loop is still alive after it was closed"


# -- Regression guards: the same outcome as asyncio.timeout -----------------------------------


async def _nested(
    make: Callable[[float], Any], outer_s: float, inner_s: float, gap: bool
) -> tuple[Any, ...]:
    outer = make(outer_s)
    inner = None
    result: Any
    try:
        async with outer:
            if gap:
                await asyncio.sleep(0)
            inner = make(inner_s)
            try:
                async with inner:
                    hold_the_loop(0.3)  # past whichever is short
                    await asyncio.sleep(LONG)
            except TimeoutError:
                result = "inner timed out"
            else:
                result = "inner returned"
            await asyncio.sleep(0)
            result = (result, "outer went on")
    except TimeoutError:
        result = "outer timed out"
    except asyncio.CancelledError:
        result = "cancelled"
    return result, outer.expired(), inner.expired() if inner is not None else None


async def _nested_by(
    outer_s: float, inner_s: float, gap: bool, make: Callable[[float], Any]
) -> tuple[Any, ...]:
    return await _nested(make, outer_s, inner_s, gap)


NESTED = {
    "inner shorter": (LONG, 0.05, False),
    "inner longer": (0.05, LONG, False),
    "same duration, later": (0.05, 0.05, True),
    "different, both short": (0.05, 0.06, True),
}


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("case", NESTED)
def test_nested_deadlines_behave_as_asyncio_timeout(loop: str, case: str) -> None:
    outer_s, inner_s, gap = NESTED[case]
    if case in ("same duration, later", "different, both short"):
        # Both overdue in the same iteration: which one asyncio.timeout expires first depends
        # on the heap; only what escapes the outer block is pinned, on both.
        for make in KINDS.values():
            result = _run(loop, partial(_nested, make, outer_s, inner_s, gap))
            assert result[0] == "outer timed out" and result[1] is True, result
        return
    _side_by_side(loop, partial(_nested_by, outer_s, inner_s, gap))


async def _interleaved(make: Callable[[float], Any]) -> dict[str, str]:
    """Requests of three durations begun interleaved, some ending in time, some not."""
    outcomes: dict[str, str] = {}

    def request(name: str, seconds: float, work: float) -> Awaitable[None]:
        return timed_request(make, outcomes, name, seconds, work)

    tasks: list[asyncio.Task[None]] = []
    endless: list[asyncio.Task[None]] = []
    for i in range(30):
        seconds = (0.05, 0.08, LONG)[i % 3]
        work = LONG if i % 2 else 0
        task = asyncio.create_task(request(f"{i}", seconds, work))
        (endless if seconds == LONG and work == LONG else tasks).append(task)
        await asyncio.sleep(0)
    await asyncio.wait_for(asyncio.gather(*tasks), LONG)
    for task in endless:
        task.cancel()
    await asyncio.gather(*endless, return_exceptions=True)
    return outcomes


@pytest.mark.parametrize("loop", LOOPS)
def test_interleaved_durations_behave_as_asyncio_timeout(loop: str) -> None:
    _side_by_side(loop, _interleaved)


async def _cancelled_at_the_same_moment(make: Callable[[float], Any]) -> tuple[str, bool]:
    """Something else cancels the task in the very iteration the deadline expires."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    manager = make(0.05)
    try:
        async with manager:
            when = manager.when if isinstance(manager, Deadline) else manager.when()
            loop.call_at(when, task.cancel)
            hold_the_loop(0.2)  # both due by the time the loop looks
            await asyncio.sleep(LONG)
        outcome = "returned"
    except TimeoutError:
        outcome = "TimeoutError"
    except asyncio.CancelledError:
        outcome = "CancelledError"
        task.uncancel()
    return outcome, manager.expired()


@pytest.mark.parametrize("loop", LOOPS)
def test_cancelled_elsewhere_as_it_expires(loop: str) -> None:
    _side_by_side(loop, _cancelled_at_the_same_moment)


async def _shielded(make: Callable[[float], Any]) -> tuple[str, bool, str]:
    """Expiry while the task waits in asyncio.shield: the block ends, the shielded work goes on."""
    finished = asyncio.Event()

    async def work() -> str:
        await asyncio.sleep(0.3)
        finished.set()
        return "done"

    inner = asyncio.ensure_future(work())
    manager = make(0.05)
    try:
        async with manager:
            await asyncio.shield(inner)
        outcome = "returned"
    except TimeoutError:
        outcome = "TimeoutError"
    await asyncio.wait_for(finished.wait(), LONG)
    return outcome, manager.expired(), await inner


@pytest.mark.parametrize("loop", LOOPS)
def test_expiry_in_a_shielded_await(loop: str) -> None:
    _side_by_side(loop, _shielded)


async def _zero(make: Callable[[float], Any]) -> tuple[str, str, bool]:
    """A deadline already due at entry: the block without an await finishes; one with an await
    is cut at it."""
    first = make(0)
    async with first:
        pass
    second = make(-1)
    try:
        async with second:
            await asyncio.sleep(LONG)
        outcome = "returned"
    except TimeoutError:
        outcome = "TimeoutError"
    return "no await: returned", outcome, second.expired()


@pytest.mark.parametrize("loop", LOOPS)
def test_a_deadline_due_at_entry(loop: str) -> None:
    _side_by_side(loop, _zero)


def test_deadlines_on_two_threads_loops_at_once() -> None:
    """Two event loops running at the same time on two threads (the sweeps are per loop; the
    last-loop cache is shared): each loop's requests time out or finish as they should."""
    results: dict[str, Any] = {}

    async def requests(tag: str) -> dict[str, int]:
        counts = {"ok": 0, "timeout": 0}

        async def one(i: int) -> None:
            try:
                async with Deadline(0.05):
                    await asyncio.sleep(LONG if i % 4 == 0 else 0)
                counts["ok"] += 1
            except TimeoutError:
                counts["timeout"] += 1

        for _ in range(20):
            await asyncio.gather(*(one(i) for i in range(40)))
        return counts

    def thread(tag: str, factory: Callable[[], asyncio.AbstractEventLoop]) -> None:
        with asyncio.Runner(loop_factory=factory) as runner:
            results[tag] = runner.run(requests(tag))

    threads = [
        threading.Thread(target=thread, args=(tag, factory))
        for tag, factory in [("a", uvloop.new_event_loop), ("b", asyncio.new_event_loop)]
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results == {tag: {"ok": 600, "timeout": 200} for tag in ("a", "b")}, results


async def _burst() -> tuple[int, int]:
    loop = asyncio.get_running_loop()
    release = asyncio.Event()
    timed_out = 0
    all_timed_out = asyncio.Event()

    async def request(i: int) -> None:
        nonlocal timed_out
        try:
            async with Deadline(0.5 if i % 1000 == 0 else LONG):
                await release.wait() if i % 1000 else await asyncio.sleep(LONG)
        except TimeoutError:
            timed_out += 1
            if timed_out == 20:
                all_timed_out.set()

    tasks = [asyncio.create_task(request(i)) for i in range(20_000)]
    await asyncio.sleep(0)
    await asyncio.wait_for(all_timed_out.wait(), LONG)
    release.set()
    await asyncio.gather(*tasks)
    pending = sum(len(s._pending) for s in deadlines._SWEEPS.get(loop, {}).values())
    return timed_out, pending


def test_a_burst_of_requests_leaves_nothing_pending() -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(_burst()) == (20, 0)
