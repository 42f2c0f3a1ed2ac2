"""Request deadlines: asyncio.timeout's semantics, one event-loop timer for all requests.

Every HTTP request and every WebSocket query or mutation runs under the same deadline,
REQUEST_TIMEOUT_SECONDS from its start. asyncio.timeout schedules and cancels an event-loop
timer for each (about 5 us under uvloop: a few per cent of the lightest request's CPU). Deadlines
of one duration expire in the order they begin, so one timer per event loop and duration serves
them all: a request enters an insertion-ordered dict and leaves it when it ends; the timer fires
at the oldest one's expiry, cancels every request then due, and sets itself for the next.

A request past its deadline is cancelled and sees TimeoutError where its `async with` ends,
exactly as under asyncio.timeout (the same cancel/uncancel accounting, so a cancellation from
elsewhere still propagates as CancelledError). `lift()` is asyncio.Timeout.reschedule(None):
from then on the deadline no longer cancels the request (context.commit_begins).
"""

from __future__ import annotations

import asyncio
import weakref
from types import TracebackType

_ENTERED, _LIFTED, _EXITED, _EXPIRING, _EXPIRED = range(5)  # as asyncio.Timeout's, with LIFTED


class _Sweep:
    """The deadlines of one duration on one event loop, oldest first, and the one timer.

    It keeps no reference to its loop (the loop's entry in _SWEEPS is weak: a finished loop must
    not be kept alive by the sweep that served it); the loop's timer refers to the sweep."""

    __slots__ = ("_armed", "_duration", "_pending", "_timer_when")

    def __init__(self, duration: float) -> None:
        self._duration = duration
        self._pending: dict[Deadline, None] = {}  # insertion order is expiry order
        self._armed = False
        self._timer_when = 0.0

    def add(self, deadline: Deadline, loop: asyncio.AbstractEventLoop) -> float:
        when = loop.time() + self._duration
        self._pending[deadline] = None
        if not self._armed:
            self._arm(loop, when)
        return when

    def remove(self, deadline: Deadline) -> None:
        # The timer stays: when it fires early (its deadline left), it re-arms for the oldest.
        self._pending.pop(deadline, None)

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        self._armed = True
        self._timer_when = when
        loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._armed = False
        loop = asyncio.get_running_loop()
        # Every deadline due by now expires in this one turn (after a stalled loop, as many as
        # asyncio.timeout's own timers would), and at least those the timer was set for.
        due_by = max(self._timer_when, loop.time())
        due = []
        for deadline in self._pending:
            if deadline.when > due_by:
                break
            due.append(deadline)
        for deadline in due:
            del self._pending[deadline]
            deadline._expire()
        if self._pending:
            self._arm(loop, next(iter(self._pending)).when)


_SWEEPS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[float, _Sweep]] = (
    weakref.WeakKeyDictionary()
)


_last: tuple[weakref.ref[asyncio.AbstractEventLoop] | None, dict[float, _Sweep]] = (None, {})


def _sweep(loop: asyncio.AbstractEventLoop, duration: float) -> _Sweep:
    global _last
    last_loop, sweeps = _last
    if last_loop is None or last_loop() is not loop:  # a server has one; tests run many in turn
        sweeps = _SWEEPS.setdefault(loop, {})
        _last = (weakref.ref(loop), sweeps)
    sweep = sweeps.get(duration)
    if sweep is None:
        sweep = sweeps[duration] = _Sweep(duration)
    return sweep


class Deadline:
    """`async with Deadline(seconds):` cancels the block's task that many seconds after it
    begins, and raises TimeoutError where the block ends, as `asyncio.timeout(seconds)` does."""

    __slots__ = ("__weakref__", "_cancelling", "_duration", "_state", "_sweep", "_task", "when")

    def __init__(self, seconds: float) -> None:
        self._duration = seconds
        self.when = 0.0  # the event loop's time at which it expires (set on entry)

    async def __aenter__(self) -> Deadline:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("Deadline should be used inside a task")
        sweep = _sweep(loop, self._duration)
        self._sweep = sweep
        self._task = task
        self._cancelling = task.cancelling()
        self._state = _ENTERED
        self.when = sweep.add(self, loop)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._state == _ENTERED:
            self._sweep.remove(self)
            self._state = _EXITED
        elif self._state == _LIFTED:
            self._state = _EXITED
        elif self._state == _EXPIRING:
            self._state = _EXPIRED
            if (
                self._task.uncancel() <= self._cancelling
                and exc_type is not None
                and issubclass(exc_type, asyncio.CancelledError)
            ):
                raise TimeoutError from exc

    def expired(self) -> bool:
        """The deadline passed and the block's task was cancelled for it."""
        return self._state >= _EXPIRING

    def lift(self) -> None:
        """No cancellation from now on (a cancellation already sent stays: see expired())."""
        if self._state == _ENTERED:
            self._state = _LIFTED
            self._sweep.remove(self)

    def _expire(self) -> None:
        self._state = _EXPIRING
        self._task.cancel()
