"""The fleet's changes, whoever made them, on a face's bus.

A face sees its own engine's changes on the bus at once; a change made by another process
(a `fleet-tui spawn`, a headless conductor, another control room) reaches it only through
the database: the outbox events after a cursor, woken by the relay's NOTIFY (engine.kit.listener).
Each changed task is re-read once per burst, under the operator's row-level security, and
published as TaskChanged (TaskDeleted once it is gone). An event for a version the bus has
already carried (this process made that change) costs no read."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fleet_tui.domain.errors import NotFoundError
from fleet_tui.domain.models import Operator
from fleet_tui.engine.kit.bus import EventBus, TaskChanged, TaskDeleted
from fleet_tui.engine.kit.listener import OutboxListener
from fleet_tui.engine.kit.loops import PeriodicLoop
from fleet_tui.engine.kit.supervisor import Supervisor
from fleet_tui.store.db import Database
from fleet_tui.store.tasks import TaskRegistry

log = logging.getLogger(__name__)

POLL_S = 2.0  # a missed NOTIFY costs at most this
RETRY_S = 1.0  # after a failed read, the changed tasks are read again this much later
IDLE_S = 3600.0


class ChangeFeed:
    def __init__(self, db: Database, bus: EventBus, *, operator: Operator, poll_s: float = POLL_S) -> None:
        self._db = db
        self._bus = bus
        self._operator = operator
        self._registry = TaskRegistry(db)
        self._poll_s = poll_s
        self._listener: OutboxListener | None = None
        self._dirty: dict[str, None] = {}
        # woken by each change noted; idle otherwise (the hourly round finds nothing dirty)
        self._publisher = PeriodicLoop(self._publish_changes, name="fleet-feed-changes", interval_s=IDLE_S)
        self._reader = Supervisor("change-feed")
        self.errors = 0  # failed reads (the listener's lost connections included)
        self.read = 0  # tasks re-read: changes made elsewhere

    @property
    def running(self) -> bool:
        return self._publisher.running

    async def start(self) -> None:
        """Listen from now on: the caller loads the present itself (status)."""
        if self.running:
            return
        self._listener = OutboxListener(self._db.app_url, operator=self._operator, poll_s=self._poll_s)
        await self._listener.start()
        self._reader.start(self._read_outbox(), name="fleet-feed-outbox")
        self._publisher.start()

    async def close(self) -> None:
        await self._reader.shutdown(timeout_s=0)
        await self._publisher.stop(timeout_s=0)
        if self._listener is not None:
            await self._listener.close()
            self._listener = None

    def health_errors(self) -> int:
        return self.errors + (self._listener.read_errors if self._listener is not None else 0)

    async def _read_outbox(self) -> None:
        """Lost connections are the listener's business; any other error is logged and
        reading goes on from the cursor, so the face never silently stops updating."""
        assert self._listener is not None
        while True:
            try:
                async for envelope in self._listener:
                    self._note(envelope)
            except Exception as exc:
                self.errors += 1
                log.warning("change feed could not read the outbox (%s); again in %.0f s", type(exc).__name__,
                            RETRY_S)
                await asyncio.sleep(RETRY_S)

    def _note(self, envelope: dict[str, Any]) -> None:
        task_id = envelope.get("task_id")
        if not task_id or self._bus.deleted(task_id):
            return
        version = (envelope.get("payload") or {}).get("version")
        if envelope.get("type") != "task.deleted" and isinstance(version, int) \
                and self._bus.version_of(task_id) >= version:
            return  # the bus carried this version already
        self._dirty[task_id] = None
        self._publisher.wake()

    async def _publish_changes(self) -> float | None:
        """Re-read each changed task once per burst, whatever number of events it had."""
        task_ids, self._dirty = list(self._dirty), {}
        failed = False
        for task_id in task_ids:
            try:
                task = await self._registry.get(task_id, operator=self._operator)
            except NotFoundError:  # deleted, or not ours to see
                self._bus.publish(TaskDeleted(task_id))
                continue
            except Exception as exc:  # the database away: read them again in a moment
                self.errors += 1
                self._dirty[task_id] = None
                failed = True
                log.warning("change feed could not re-read task %s (%s)", task_id, type(exc).__name__)
                continue
            self.read += 1
            if task.version > self._bus.version_of(task_id):
                self._bus.publish(TaskChanged(task))
        return RETRY_S if failed else None
