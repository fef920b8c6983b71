"""When to ask a remote forge again about a pending change's CI: per change, backing off
from the forge's floor (GitHub: 30 s) up to a cap, and never more often than the monitor's
share of the call budget allows for all the changes waiting. A local forge (floor 0) is
asked every cycle, as before."""

from __future__ import annotations

import time
from collections.abc import Callable

CAP_S = 600.0
MONITOR_SHARE = 0.5  # of the call budget; the rest stays for operators (diffs, merges)


class CIPolls:
    def __init__(self, floor_s: float, *, budget_per_hour: float | None = None, cap_s: float = CAP_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.floor_s = floor_s
        self.budget_per_hour = budget_per_hour
        self.cap_s = max(cap_s, floor_s)
        self._clock = clock
        self._next: dict[str, tuple[float, int]] = {}  # task id -> (due at, polls while pending)

    def due(self, task_id: str) -> bool:
        entry = self._next.get(task_id)
        return entry is None or self._clock() >= entry[0]

    def pending(self, task_id: str, *, waiting: int = 1) -> float:
        """The change is still pending: schedule its next poll; returns the interval. waiting:
        changes the fleet is polling at once (they share the monitor's part of the budget)."""
        if self.floor_s <= 0:
            return 0.0
        polls = self._next.get(task_id, (0.0, 0))[1]
        interval = min(self.floor_s * 2.0 ** polls, self.cap_s)
        if self.budget_per_hour:
            interval = max(interval, waiting * 3600.0 / (self.budget_per_hour * MONITOR_SHARE))
        self._next[task_id] = (self._clock() + interval, polls + 1)
        return interval

    def forget_except(self, task_ids: set[str]) -> None:
        for task_id in set(self._next) - task_ids:
            del self._next[task_id]
