"""What the outbox relay, the notification worker and the command worker share: a
PeriodicLoop whose step is a round, woken by LISTEN (or poke) or when the poll interval
passes, backing off on errors, never dying, stopping cleanly."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fleet_tui.engine.kit.loops import PeriodicLoop

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
        self._loop: PeriodicLoop | None = None

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

    @property
    def running(self) -> bool:
        return self._loop is not None and self._loop.running

    def start(self) -> None:
        if not self.running:
            self._loop = PeriodicLoop(self._round, name=self.worker_name, interval_s=lambda: self.poll_s,
                                      backoff=lambda failures: min(0.5 * 2 ** failures, 30.0),
                                      on_error=self._failed, waiter=self._wait)
            self._loop.start()

    async def _round(self) -> float | None:
        from fleet_tui.engine.kit.listener import Wakeup

        if self._wake_url and self._wakeup is None:
            self._wakeup = Wakeup(self._wake_url, [self.wake_channel], name=self.wake_name)
        if self._wakeup is not None:
            await asyncio.wait_for(self._wakeup.connection(), self.poll_s)
        settled = await self.run_once()
        return 0 if settled else self.idle_pause_s()  # after a busy round more may be due at once

    def _failed(self, exc: Exception) -> None:  # database away, say: one line, back off
        self.stats.errors += 1
        log.warning("%s round failed (%s: %s)", self.worker_name, type(exc).__name__, str(exc)[:200])
        if self._wakeup is not None:
            self._wakeup.broken()

    async def _wait(self, seconds: float) -> None:
        if self._wakeup is not None:
            await self._wakeup.wait(seconds)
        else:
            await asyncio.sleep(seconds)

    def poke(self) -> None:
        if self._loop is not None:
            self._loop.wake()

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the round in hand, then stop."""
        if self._loop is not None:
            await self._loop.stop(timeout_s)
        if self._wakeup is not None:
            await self._wakeup.close()
            self._wakeup = None
