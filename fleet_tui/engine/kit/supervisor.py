"""The one registry of background tasks: start them by name, keep a reference (a bare
create_task may be garbage-collected mid-flight), say an unexpected failure once, and
at shutdown give them a moment to finish before cancelling the rest."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Coroutine, Hashable
from typing import Any

log = logging.getLogger(__name__)


class Supervisor:
    def __init__(self, name: str = "fleet") -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()
        self._keyed: dict[Hashable, asyncio.Task[Any]] = {}  # tasks started with a key (a command id)
        self.failures = 0

    def start(self, work: Coroutine[Any, Any, Any], *, name: str, key: Hashable = None) -> asyncio.Task[Any]:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        if key is not None:
            self._keyed[key] = task
        task.add_done_callback(functools.partial(self._done, key))  # before any the caller adds
        return task

    def _done(self, key: Hashable, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if key is not None and self._keyed.get(key) is task:
            del self._keyed[key]
        if task.cancelled():
            return
        exc = task.exception()  # retrieved here, so asyncio does not warn again at exit
        if exc is not None:
            self.failures += 1
            log.error("%s: background %s failed: %s: %s", self.name, task.get_name(),
                      type(exc).__name__, exc, exc_info=exc)

    @property
    def tasks(self) -> list[asyncio.Task[Any]]:
        return list(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)

    def __contains__(self, key: object) -> bool:
        """A keyed task under this key is still running."""
        return key in self._keyed

    def keys(self) -> list[Hashable]:
        """The keys of the keyed tasks still running."""
        return list(self._keyed)

    async def shutdown(self, timeout_s: float = 5.0, *, cancel_wait_s: float = 5.0) -> None:
        """Wait up to timeout_s for the tasks in hand (0: not at all), cancel the rest and
        wait up to cancel_wait_s for them to end (a cancelled task may still record itself)."""
        pending = list(self._tasks)
        if not pending:
            return
        late = set(pending)
        if timeout_s > 0:
            _, late = await asyncio.wait(pending, timeout=timeout_s)
        for task in late:
            if timeout_s > 0:
                log.warning("%s: background %s still running at shutdown; cancelled", self.name, task.get_name())
            task.cancel()
        if late:
            _, stuck = await asyncio.wait(late, timeout=cancel_wait_s)
            for task in stuck:
                log.error("%s: background %s did not end within %gs of its cancellation",
                          self.name, task.get_name(), cancel_wait_s)
