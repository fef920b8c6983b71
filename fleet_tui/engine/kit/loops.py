"""The one periodic loop of the engine: run an async step, pause, run it again.

The pause is counted from the step's completion, so runs never overlap (a slow step
delays the next one instead of piling up). wake() runs the next step at once (a NOTIFY,
a freed slot); stop() lets the step in hand finish. A failing step is counted and logged
and the loop goes on; only cancellation ends it early."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

Step = Callable[[], Awaitable[float | None]]


class PeriodicLoop:
    """step() returns the pause before the next run (0: at once), or None for interval_s.

    backoff(n): the pause after the n-th failure in a row (default: interval_s).
    on_error(exc): said instead of the default log line (e.g. one line, no traceback).
    waiter(seconds): an extra way to be woken during a pause (a LISTEN connection's wait).
    stop_event: share a stop with others (run_ops' stop); stop() sets it.
    delay_first: pause before the first run (a flusher has nothing to do at start)."""

    def __init__(self, step: Step, *, name: str, interval_s: float | Callable[[], float],
                 backoff: Callable[[int], float] | None = None,
                 on_error: Callable[[Exception], None] | None = None,
                 waiter: Callable[[float], Awaitable[Any]] | None = None,
                 stop_event: asyncio.Event | None = None, delay_first: bool = False) -> None:
        self.name = name
        self._step = step
        self._interval = interval_s
        self._backoff = backoff
        self._on_error = on_error
        self._waiter = waiter
        self._stop = stop_event if stop_event is not None else asyncio.Event()
        self._wake = asyncio.Event()
        self._delay_first = delay_first
        self._task: asyncio.Task[None] | None = None
        self.runs = 0
        self.errors = 0
        self.failures_in_a_row = 0

    @property
    def interval_s(self) -> float:
        return self._interval() if callable(self._interval) else self._interval

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self) -> None:
        """Run in a task of its own (again after a stop)."""
        if not self.running:
            self._stop.clear()
            self._task = asyncio.create_task(self.run(), name=self.name)

    def wake(self) -> None:
        """Run the next step at once (or right after the one in hand)."""
        self._wake.set()

    def halt(self) -> None:
        """End after the step in hand, without waiting (e.g. from inside the step)."""
        self._stop.set()

    async def run(self) -> None:
        """The loop itself, until stopped; for callers that run it inline."""
        if self._delay_first:
            await self._pause(self.interval_s)
        while not self._stop.is_set():
            self._wake.clear()  # a wake during the step below still counts
            pause = await self._run_step()
            if pause > 0 and not self._stop.is_set():
                await self._pause(pause)

    async def _run_step(self) -> float:
        try:
            wanted = await self._step()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.errors += 1
            self.failures_in_a_row += 1
            if self._on_error is not None:
                self._on_error(exc)
            else:
                log.exception("%s: step failed (%d in a row)", self.name, self.failures_in_a_row)
            return self._backoff(self.failures_in_a_row) if self._backoff is not None else self.interval_s
        finally:
            self.runs += 1
        self.failures_in_a_row = 0
        return self.interval_s if wanted is None else wanted

    async def _pause(self, seconds: float) -> None:
        waits = [asyncio.ensure_future(self._stop.wait()), asyncio.ensure_future(self._wake.wait()),
                 asyncio.ensure_future(self._waiter(seconds) if self._waiter is not None
                                       else asyncio.sleep(seconds))]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in waits:
                future.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Let the step in hand finish (up to timeout_s, then cancel it), then end; 0 cancels at once."""
        self._stop.set()
        task, self._task = self._task, None
        if task is None:
            return
        if timeout_s <= 0:  # no grace asked for: cancel whatever is in hand
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout_s)
        except TimeoutError:
            log.warning("%s: step still running after %.1fs; cancelled", self.name, timeout_s)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
