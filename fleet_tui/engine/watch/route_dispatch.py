"""The monitor's hand-off to the event router: a task whose state calls for a policy (a
change with CI passing, a review no one runs, a failed or rejected attempt) is dispatched
as its event (task.pr_created, task.failed, task.rejected) to the operator's route.

Runs happen in the background so a 30-minute review never holds the monitor's cycle
deadline. Each is started inside the monitor's `holding(lease)` block, and asyncio copies
that context into the run, so every write the run makes is fenced by the task's lease.

The monitor looks at every task every cycle; a task is dispatched again only when its
state moved since the last run (its version changed), so a route that leaves the task
as it was (notify only, or dead-lettered to the DLQ's own retries) runs once. When no
route applies, the task is looked at again once the policy cache could have changed."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any
from collections.abc import Iterable

from fleet_tui.domain.models import TaskRecord
from fleet_tui.engine.events.resolve import CACHE_TTL_S
from fleet_tui.engine.kit.supervisor import Supervisor
from fleet_tui.engine.ports import Dispatch

log = logging.getLogger(__name__)


class TaskRoutes:
    def __init__(self, dispatch: Dispatch, *, recheck_s: float = CACHE_TTL_S) -> None:
        self._dispatch = dispatch
        self.recheck_s = recheck_s
        self.runs = Supervisor("task-routes")  # the route runs in hand, by task id
        self._settled: dict[str, tuple[int, float]] = {}  # task id -> (version, look again after)
        self.dispatched = 0
        self.errors = 0

    def busy(self, task_id: str) -> bool:
        return task_id in self.runs

    def dispatch(self, task: TaskRecord, event_type: str, context: dict[str, Any] | None = None) -> bool:
        """Start the route run for this task's event unless one runs or the task has not
        moved since the last one. True when a run started."""
        if task.id in self.runs:
            return False
        settled = self._settled.get(task.id)
        if settled is not None and settled[0] == task.version and time.monotonic() < settled[1]:
            return False
        self._settled.pop(task.id, None)
        body = {"task_id": task.id, "status": str(task.status), **(context or {})}
        self.runs.start(self._run(task, event_type, body), name=f"route-{event_type}-{task.id}", key=task.id)
        self.dispatched += 1
        return True

    async def _run(self, task: TaskRecord, event_type: str, context: dict[str, Any]) -> None:
        look_again = math.inf
        try:
            result = await self._dispatch(event_type, context, operator_id=task.operator_id,
                                          trace_id=task.trace_id)
            if result is None:
                look_again = time.monotonic() + self.recheck_s
        except asyncio.CancelledError:
            raise
        except Exception:
            self.errors += 1
            look_again = time.monotonic() + self.recheck_s
            log.exception("route for %s of task %s failed", event_type, task.id)
        self._settled[task.id] = (task.version, look_again)

    def forget_except(self, task_ids: Iterable[str]) -> None:
        """Drop what we remember of tasks this conductor no longer holds."""
        keep = set(task_ids) | set(self.runs.keys())
        for task_id in [t for t in self._settled if t not in keep]:
            del self._settled[task_id]

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Cancel the runs (they record themselves as stopped); a restarted conductor
        dispatches the tasks again from their state."""
        await self.runs.shutdown(0, cancel_wait_s=timeout_s)
