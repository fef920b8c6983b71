"""Messages the engine pump posts into Textual. Only @on handlers touch widgets."""

from __future__ import annotations

from typing import Any

from textual.message import Message

from fleet_tui.domain.models import TaskRecord


class EngineProgress(Message):
    """A slow start-up step (embedded PostgreSQL, migrations) is under way."""

    def __init__(self, step: str) -> None:
        super().__init__()
        self.step = step


class EngineReady(Message):
    """The tasks to show, and the fleet's health figures read with them (None if the
    conductor has none, with fleet_error saying why if reading them failed)."""

    def __init__(self, tasks: list[TaskRecord], fleet: dict[str, Any] | None = None,
                 fleet_error: str | None = None) -> None:
        super().__init__()
        self.tasks = tasks
        self.fleet = fleet
        self.fleet_error = fleet_error


class EngineFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class FleetBatch(Message):
    """Everything the bus said since the last batch, coalesced: the latest record per task,
    deleted ids, the latest monitor tick and the notices. One message per drain keeps a
    burst of events from flooding the message queue."""

    def __init__(self) -> None:
        super().__init__()
        self.changed: dict[str, TaskRecord] = {}
        self.deleted: set[str] = set()
        self.tick: dict[str, Any] | None = None
        self.notices: list[str] = []


class FleetHealth(Message):
    """A periodic read of the fleet's figures (outbox lag, DLQ depth, open breakers, spawn
    queue): figures None when the read failed, error saying why."""

    def __init__(self, figures: dict[str, Any] | None, error: str | None = None) -> None:
        super().__init__()
        self.figures = figures
        self.error = error


class LogLines(Message):
    def __init__(self, task_id: str, lines: list[str], ended: bool = False) -> None:
        super().__init__()
        self.task_id = task_id
        self.lines = lines
        self.ended = ended
