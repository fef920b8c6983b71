"""TRY means one thing in every face: the attempt running or last run (1-based) out of the
attempts the retry budget allows. The control room showed 2/4 where the CLI showed 1/3."""

from __future__ import annotations

from datetime import datetime, UTC

from fleet_tui.commands.tasks import task_line
from fleet_tui.domain.models import TaskRecord
from fleet_tui.ui.format import attempts_cell


def test_ui_cli_and_api_say_the_same_try() -> None:
    now = datetime.now(UTC)
    task = TaskRecord(id="abc123def456", operator_id="op", status="running", version=3, description="d",
                      repo="/r", base_branch="main", created_at=now, updated_at=now, retry_count=1, max_retries=3)
    assert attempts_cell(task) == "2/4"  # the UI's TRY column
    assert " try 2/4 " in task_line(task, now)  # the CLI's status line
    api = task.model_dump(mode="json")  # what the API and --json answer
    assert (api["attempt"], api["max_attempts"], api["retry_count"], api["max_retries"]) == (2, 4, 1, 3)
