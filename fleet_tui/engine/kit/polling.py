"""The loop the outbox relay and the notification worker share: run a round, pause until
woken (LISTEN) or the poll interval passes, back off on errors, never die, stop cleanly."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)


class PollingWorker:
    """Subclasses set wake_channel, wake_name, _wake_url, stats (with .errors), and define
    worker_name, poll_s and run_once()."""

    wake_channel = "fleet_wake"
    wake_name = "fleet-worker"
    _wake_url: str | None = None
    stats: Any

    def __init__(self) -> None:
        self._wakeup: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @property
    def worker_name(self) -> str:
        raise NotImplementedError

    @property
    def poll_s(self) -> float:
        raise NotImplementedError

    async def run_once(self) -> int:
        raise NotImplementedError

    def idle_pause_s(self) -> float:
        """The pause after a round that settled nothing."""
        return self.poll_s

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._stopping.clear()
            self._task = asyncio.create_task(self._loop(), name=self.worker_name)

    async def _loop(self) -> None:
        from fleet_tui.engine.kit.listener import Wakeup

        if self._wake_url:
            self._wakeup = Wakeup(self._wake_url, [self.wake_channel], name=self.wake_name)
        failures = 0
        while not self._stopping.is_set():
            try:
                if self._wakeup is not None:
                    await asyncio.wait_for(self._wakeup.connection(), self.poll_s)
                settled = await self.run_once()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database away, say: never die, back off
                self.stats.errors += 1
                failures += 1
                log.warning("%s round failed (%s: %s)", self.worker_name, type(exc).__name__, str(exc)[:200])
                if self._wakeup is not None:
                    self._wakeup.broken()
                await self._pause(min(0.5 * 2 ** failures, 30.0))
                continue
            if not settled:  # otherwise more may be due right away
                await self._pause(self.idle_pause_s())

    async def _pause(self, seconds: float) -> None:
        stop = asyncio.ensure_future(self._stopping.wait())
        wake = asyncio.ensure_future(
            self._wakeup.wait(seconds) if self._wakeup is not None else asyncio.sleep(seconds))
        await asyncio.wait({stop, wake}, return_when=asyncio.FIRST_COMPLETED)
        for future in (stop, wake):
            future.cancel()

    def poke(self) -> None:
        if self._wakeup is not None:
            self._wakeup.poke()

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the round in hand, then stop."""
        self._stopping.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
            except TimeoutError:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._wakeup is not None:
            await self._wakeup.close()
            self._wakeup = None
