"""In-process event bus: the engine publishes typed events, faces subscribe with queues.

Publishing never blocks the engine: a slow subscriber loses its oldest events, and the
drop is counted, because faces can always re-read the registry. The bus remembers the
latest version of each task it carried, so that news of the same change arriving from the
database (engine.observer.feed) is not read again."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from fleet_tui.domain.models import TaskRecord


@dataclass(frozen=True)
class TaskChanged:
    task: TaskRecord


@dataclass(frozen=True)
class TaskDeleted:
    task_id: str


@dataclass(frozen=True)
class MonitorTick:
    cycles: int
    last_cycle_ms: float
    errors: int


@dataclass(frozen=True)
class Notice:
    """A line for the operator: what happened and why (e.g. a retry scheduled)."""

    kind: str
    task_id: str | None
    message: str
    data: dict[str, Any] = field(default_factory=dict)


GONE = 2**62  # above any version: a deleted task's news is never read again

Event = TaskChanged | TaskDeleted | MonitorTick | Notice


class EventBus:
    def __init__(self, queue_size: int = 10_000) -> None:
        self._queues: set[asyncio.Queue[Event]] = set()
        self._queue_size = queue_size
        self.dropped = 0
        self._versions: dict[str, int] = {}  # task id -> latest version carried; GONE once deleted

    def version_of(self, task_id: str) -> int:
        """The latest version of the task this bus carried, -1 if none."""
        return self._versions.get(task_id, -1)

    def deleted(self, task_id: str) -> bool:
        return self._versions.get(task_id) == GONE

    def subscribe(self) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue(self._queue_size)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event]) -> None:
        self._queues.discard(queue)

    def publish(self, event: Event) -> None:
        if isinstance(event, TaskChanged):
            task = event.task
            if self._versions.get(task.id, -1) < task.version:
                self._versions[task.id] = task.version
        elif isinstance(event, TaskDeleted):
            self._versions[event.task_id] = GONE  # ids are never reused
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
                self.dropped += 1
            queue.put_nowait(event)
