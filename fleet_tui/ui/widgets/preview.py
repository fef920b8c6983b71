"""The selected task's agent output under the table, live: the last lines of its log, then
every line after them, from the same stream as the detail screen's Log tab."""

from __future__ import annotations


from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from fleet_tui.domain.models import TaskRecord
from fleet_tui.domain.status import PROCESS_STATUSES
from fleet_tui.ui.format import NEEDS_INPUT, plain, short, waiting
from fleet_tui.ui.messages import LogLines
from fleet_tui.ui.widgets.tail_log import TailLog

PREVIEW_TAIL = 200  # lines of an existing log shown when a task is selected (not the whole log)
PREVIEW_KEEP = 2_000  # lines the pane keeps while it follows


class Preview(Vertical):
    """Shows one task's output at a time; show() says whether the task changed (the caller
    then follows the new task's stream)."""

    task_id: str | None = None
    ended = False  # the stream of the shown task has ended

    def compose(self) -> ComposeResult:
        yield Static("", id="preview-title")
        yield TailLog(id="preview-log", max_lines=PREVIEW_KEEP)

    @property
    def log_pane(self) -> TailLog:
        return self.query_one(TailLog)

    def show(self, task: TaskRecord | None) -> bool:
        """Title the pane for this task; True when its output must be read afresh."""
        if task is None:
            self.task_id = None
            self.query_one("#preview-title", Static).update(Text("no task selected", style="dim"))
            self.log_pane.clear()
            return False
        self._title(task)
        if task.id == self.task_id:
            return False
        self.task_id = task.id
        self.ended = False
        log = self.log_pane
        log.clear()
        log.received = 0
        return True

    def update_task(self, task: TaskRecord) -> bool:
        """The shown task changed: title it again; True when its stream ended before its
        agent ran (no log yet then) and it runs now: read again."""
        self._title(task)
        return self.ended and self.received_none and task.status in PROCESS_STATUSES

    @property
    def received_none(self) -> bool:
        return self.log_pane.received == 0

    def _title(self, task: TaskRecord) -> None:
        state = NEEDS_INPUT if waiting(task) else str(task.status)
        title = Text.assemble(("output of ", "dim"), (task.id, "bold"), (f" ({state})  ", "dim"),
                              plain(short(task.description, 60)))
        self.query_one("#preview-title", Static).update(title)

    def forget(self) -> None:
        """Read the task's output again on the next show() (the stream was stopped)."""
        self.task_id = None

    def lines(self, message: LogLines, ended_note: str = "") -> None:
        if message.task_id != self.task_id:
            return  # a batch of the task selected before
        log = self.log_pane
        if message.lines:
            log.write_batch(message.lines)
        if message.ended:
            self.ended = True
            if log.received == 0:
                log.write_line(ended_note or "(no output recorded for this task)")
