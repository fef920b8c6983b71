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
    def __init__(self, tasks: list[TaskRecord]) -> None:
        super().__init__()
        self.tasks = tasks


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


class LogLines(Message):
    def __init__(self, task_id: str, lines: list[str], ended: bool = False) -> None:
        super().__init__()
        self.task_id = task_id
        self.lines = lines
        self.ended = ended
