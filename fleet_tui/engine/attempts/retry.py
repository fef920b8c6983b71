"""The retry engine: what happens to a failed or rejected task. Pure decisions here; the
monitor applies them through the registry."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, UTC

from fleet_tui.config import RetrySettings
from fleet_tui.domain.models import TaskRecord
from fleet_tui.domain.retry import backoff_delay, may_retry

RETRY_AT_KEY = "retry_at"


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    delay_s: float = 0.0
    reason: str = ""


class RetryPolicy:
    def __init__(self, settings: RetrySettings, rng: random.Random | None = None) -> None:
        self._settings = settings
        self._rng = rng or random.Random()

    def decide(self, task: TaskRecord, *, fleet_load: float) -> RetryDecision:
        """fleet_load is live/capacity; above the threshold the delay doubles."""
        if not may_retry(task.retry_count, task.max_retries):
            return RetryDecision(False, reason=f"retry budget spent ({task.max_retries})")
        over = fleet_load > self._settings.capacity_threshold
        delay = backoff_delay(
            task.retry_count,
            base_s=self._settings.base_s,
            cap_s=self._settings.cap_s,
            over_capacity=over,
            rng=self._rng,
        )
        note = " (doubled: fleet over capacity threshold)" if over else ""
        return RetryDecision(True, delay, f"attempt {task.retry_count + 2} in {delay:.1f}s{note}")


def retry_at(delay_s: float, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return (now + timedelta(seconds=delay_s)).isoformat()


def is_due(task: TaskRecord, now: datetime | None = None) -> bool:
    when = task.metadata.get(RETRY_AT_KEY)
    if not when:
        return True
    now = now or datetime.now(UTC)
    return datetime.fromisoformat(when) <= now
