"""Notifications: the record the notification worker delivers from (store/notifications.py),
written beside a task's state, and the faces told at once on the bus. The ledger's terminal
notification, the monitor's attention, a route's notify step, a review's rejection and a
refused budget all write through here."""

from __future__ import annotations

from collections.abc import Callable

from fleet_tui.domain.models import TaskRecord
from fleet_tui.engine.kit.bus import Event, Notice
from fleet_tui.store import notifications as notification_store
from fleet_tui.store.db import Database


class Notifications:
    def __init__(self, db: Database, *, publish: Callable[[Event], None]) -> None:
        self._db = db
        self._publish = publish

    async def notify(self, task: TaskRecord, kind: str, summary: str, *, dedup_key: str | None = None) -> None:
        """Record the notification for the task's operator (the notification worker delivers
        it) and tell the faces. A repeated dedup_key records nothing new."""
        async with self._db.system() as conn:
            await notification_store.record(conn, task_id=task.id, operator_id=task.operator_id,
                                            type=kind, summary=summary, dedup_key=dedup_key)
        self._publish(Notice(kind, task.id, summary))

    async def notify_operator(self, operator_id: str, kind: str, summary: str) -> None:
        """A notification about no task in particular (e.g. budget_exceeded before a spawn)."""
        async with self._db.system() as conn:
            await notification_store.record(conn, task_id=None, operator_id=operator_id,
                                            type=kind, summary=summary)
        self._publish(Notice(kind, None, summary))
