"""asyncpg Records -> domain models. Columns of fleet_tasks match TaskRecord field-for-field."""

from __future__ import annotations

from typing import Any
from collections.abc import Mapping

from fleet_tui.domain.models import TaskRecord

TASK_COLUMNS: tuple[str, ...] = tuple(TaskRecord.model_fields)
TASK_SELECT = ", ".join(TASK_COLUMNS)


def to_task(row: Mapping[str, Any]) -> TaskRecord:
    return TaskRecord.model_validate({name: row[name] for name in TASK_COLUMNS})
