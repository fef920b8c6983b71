"""The live task table: keyed by task id and diffed in place (never rebuilt per event)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Iterable

from rich.text import Text
from textual.coordinate import Coordinate
from textual.widgets import DataTable

from fleet_tui.domain.models import TaskRecord
from fleet_tui.domain.status import LIVE_STATUSES
from fleet_tui.ui.format import COLUMNS, Clock, matches, row_cells

# sort name -> (key on the record, newest/highest first?)
SORTS: dict[str, tuple[Callable[[TaskRecord], Any], bool]] = {
    "age": (lambda t: t.created_at, True),
    "status": (lambda t: (t.status not in LIVE_STATUSES, str(t.status), t.created_at), False),
    "priority": (lambda t: (t.priority, t.created_at), True),
    "operator": (lambda t: (t.operator_id, t.created_at), False),
}


def _same(a: str | Text, b: str | Text) -> bool:
    return str(a) == str(b) and getattr(a, "style", None) == getattr(b, "style", None)


class TaskTable(DataTable[Any]):
    def __init__(self, now: Clock, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.now = now
        self.tasks: dict[str, TaskRecord] = {}
        self.filter_text = ""
        self.sort_name = "age"
        self._rendered: dict[str, dict[str, str | Text]] = {}

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    # --- reading -----------------------------------------------------------------------

    @property
    def visible_ids(self) -> list[str]:
        return [str(row.key.value) for row in self.ordered_rows]

    def selected_task(self) -> TaskRecord | None:
        if self.row_count == 0:
            return None
        row = min(max(self.cursor_row, 0), self.row_count - 1)
        key = self.coordinate_to_cell_key(Coordinate(row, 0)).row_key.value
        return self.tasks.get(str(key))

    # --- writing: the diff -----------------------------------------------------------------

    def apply(self, changed: Iterable[TaskRecord] = (), deleted: Iterable[str] = ()) -> None:
        """Add, update or remove only the rows and cells that changed."""
        added = False
        now = self.now()
        with self.app.batch_update():
            for task in changed:
                self.tasks[task.id] = task
                added |= self._show(task, now)
            for task_id in deleted:
                self.tasks.pop(task_id, None)
                self._hide(task_id)
            if added:
                self.resort()

    def _show(self, task: TaskRecord, now: datetime) -> bool:
        if not matches(task, self.filter_text):
            self._hide(task.id)
            return False
        cells = row_cells(task, now, self.app.current_theme)
        old = self._rendered.get(task.id)
        self._rendered[task.id] = cells
        if old is None:
            self.add_row(*cells.values(), key=task.id)
            return True
        for column, value in cells.items():
            if not _same(old[column], value):
                self.update_cell(task.id, column, value)
        return False

    def _hide(self, task_id: str) -> None:
        if self._rendered.pop(task_id, None) is not None:
            self.remove_row(task_id)

    def set_filter(self, text: str) -> None:
        self.filter_text = text
        self.apply(list(self.tasks.values()))

    def set_sort(self, name: str) -> None:
        self.sort_name = name
        self.resort()

    def resort(self) -> None:
        """Sort, keeping the cursor on the same task."""
        selected = self.selected_task()
        key, reverse = SORTS[self.sort_name]
        self.sort("id", key=lambda task_id: key(self.tasks[str(task_id)]), reverse=reverse)
        if selected is not None and selected.id in self._rendered:
            self.move_cursor(row=self.get_row_index(selected.id), animate=False)

    def refresh_ages(self) -> None:
        """The clock moved: touch only the age cells whose text changed."""
        from fleet_tui.ui.format import age

        now = self.now()
        with self.app.batch_update():
            for task_id, cells in self._rendered.items():
                text = age(self.tasks[task_id].created_at, now)
                if cells["age"] != text:
                    cells["age"] = text
                    self.update_cell(task_id, "age", text)

    def refresh_cells(self) -> None:
        """Ages tick and theme colours change: re-render, still touching only changed cells."""
        self.apply(list(self.tasks.values()))
