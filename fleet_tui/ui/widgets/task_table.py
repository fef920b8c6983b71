"""The live task table: keyed by task id and diffed in place (never rebuilt per event).
Its columns have fixed widths that fit the table's width (format.column_widths): made
again only when a resize changes them."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from collections.abc import Callable, Iterable

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.coordinate import Coordinate
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from fleet_tui.domain.models import TaskRecord
from fleet_tui.domain.status import LIVE_STATUSES
from fleet_tui.ui.format import COLUMNS, Clock, column_widths, matches, row_cells

# sort name -> (key on the record, newest/highest first?)
SORTS: dict[str, tuple[Callable[[TaskRecord], Any], bool]] = {
    "age": (lambda t: t.created_at, True),
    "status": (lambda t: (t.status not in LIVE_STATUSES, str(t.status), t.created_at), False),
    "priority": (lambda t: (t.priority, t.created_at), True),
    "operator": (lambda t: (t.operator_id, t.created_at), False),
}


FEW_ROWS = 8  # changed rows up to which a flush empties the cell cache instead of searching it
MANY_ROWS = 64  # rows leaving or entering the view above which the table is made again
# a cursor/hover position that matches no row (the header is row -1)
_NOWHERE = Coordinate(-2, -2)
Lines = list[list[Segment]]  # a rendered row's lines (DataTable's SegmentLines)


def _same(a: Text, b: Text) -> bool:
    return a.plain == b.plain and a.style == b.style


class TaskTable(DataTable[Text]):
    def __init__(self, now: Clock, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.now = now
        self.tasks: dict[str, TaskRecord] = {}
        self.filter_text = ""
        self.sort_name = "age"
        self._rendered: dict[str, dict[str, Text]] = {}
        self._changed_cells: set[tuple[RowKey, ColumnKey]] = set()
        self._targeted_updates = all(hasattr(self, name) for name in self._CACHES)
        self.widths: dict[str, int] = {}  # the columns shown, in order, and their widths

    def on_mount(self) -> None:
        self.fit(self.size.width or self.app.size.width)

    def on_resize(self, event: events.Resize) -> None:
        self.fit(event.size.width)

    def fit(self, width: int) -> None:
        """Columns for this width (room kept for the vertical scrollbar, so that no row is
        ever wider than the table); the table is made again only if they change."""
        widths = column_widths(max(width - self.styles.scrollbar_size_vertical, 0), self.cell_padding)
        if widths != self.widths:
            self.widths = widths
            self._rebuild(set(self._rendered), columns=True)

    # --- rendering ---------------------------------------------------------------------

    _pass_style: Style | None = None

    def render_lines(self, crop: Region) -> list[Strip]:
        # DataTable.render_line asks for rich_style once per line, and rich_style walks every
        # ancestor's styles: once per render pass is enough (nothing restyles mid-pass)
        self._pass_style = self.rich_style
        try:
            return super().render_lines(crop)
        finally:
            self._pass_style = None

    @property
    def rich_style(self) -> Style:
        return self._pass_style if self._pass_style is not None else super().rich_style

    def _render_line_in_row(self, row_key: RowKey, line_no: int, base_style: Style,
                            cursor_location: Coordinate, hover_location: Coordinate) -> tuple[Lines, Lines]:
        """DataTable caches a rendered row under the cursor and hover coordinates, so every
        cursor move (and every scroll step it causes) re-renders every visible row from its
        cells. With a row cursor only "is the cursor on this row" matters: rows the cursor
        is not on are rendered (and cached) as if it were nowhere, and a move re-renders
        just the two rows it touched."""
        if self.cursor_type == "row":
            row_index = self._row_locations.get(row_key)
            row = -1 if row_index is None else row_index
            if cursor_location.row != row:
                cursor_location = _NOWHERE
            if hover_location.row != row:
                hover_location = _NOWHERE
        return super()._render_line_in_row(row_key, line_no, base_style, cursor_location, hover_location)

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        """DataTable measures every new cell through the console (10,000 measurements when a
        filter brings 1,000 rows back: ~100 ms of one keystroke). A task's cells are
        one-line Text, whose width is its cell length."""
        rows = [self.rows[key] for key in new_rows if key in self.rows]
        if not self._targeted_updates or any(row.auto_height for row in rows):
            super()._update_dimensions([row.key for row in rows])
            return
        columns = self.ordered_columns
        for row in rows:
            cells = self._data[row.key]
            for column in columns:
                value = cells.get(column.key)
                width = value.cell_len if value is not None else 1  # every cell is one-line Text
                if width > column.content_width:
                    column.content_width = width
        super()._update_dimensions([])  # the rest of it: the virtual size from the widths

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
            self._flush_cells()
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
            self.add_row(*self._shown(cells), key=task.id)
            return True
        for column in self.widths:
            if not _same(old[column], cells[column]):
                self._set_cell(task.id, column, cells[column])
        return False

    def _shown(self, cells: dict[str, Text]) -> list[Text]:
        return [cells[key] for key in self.widths]

    # DataTable.update_cell bumps a counter that is part of every render-cache key, so one
    # changed cell anywhere makes the next frame re-render every visible row from scratch
    # (~25 ms for a 48-row view on a 2-core machine); a stream of task updates then puts that
    # cost on nearly every frame, keypresses included. Here a changed cell evicts only its
    # own cached renders and repaints only its row. The table's own caches are private: when
    # they are not what this expects (another Textual), update_cell does the work instead.
    _CACHES = ("_data", "_row_render_cache", "_cell_render_cache", "_row_renderable_cache", "_line_cache")

    def _set_cell(self, task_id: str, column: str, value: Text) -> None:
        if not self._targeted_updates:
            self.update_cell(task_id, column, value)
            return
        row_key, column_key = RowKey(task_id), ColumnKey(column)
        self._data[row_key][column_key] = value
        self._changed_cells.add((row_key, column_key))

    def _flush_cells(self) -> None:
        """Evict the cached renders of the cells set since the last flush; repaint their rows."""
        cells, self._changed_cells = self._changed_cells, set()
        if not cells:
            return
        rows = {row_key for row_key, _ in cells}
        for key in [k for k in self._row_render_cache.keys() if k[0] in rows]:
            self._row_render_cache.discard(key)
        # a row is re-rendered from its cells: a few rows re-make all theirs (the cache can
        # go), many rows at once (the ages tick) keep their unchanged cells
        if len(rows) > FEW_ROWS:
            for cell_key in [k for k in self._cell_render_cache.keys() if (k[0], k[1]) in cells]:
                self._cell_render_cache.discard(cell_key)
        else:
            self._cell_render_cache.clear()
        self._row_renderable_cache.clear()
        indices = {self._row_locations.get(row_key) for row_key in rows}
        self._line_cache.clear()  # keyed by line, not row; rebuilt cheaply from the row cache
        if len(indices) > FEW_ROWS:
            self.refresh()  # refresh_row costs O(index) each: many rows, one repaint of the view
            return
        for index in indices:
            if index is not None:
                self.refresh_row(index)

    def _hide(self, task_id: str) -> None:
        if self._rendered.pop(task_id, None) is not None:
            self.remove_row(task_id)

    def set_filter(self, text: str) -> None:
        """Only rows that enter or leave the view are touched. DataTable re-indexes every row
        on each remove_row, so when many rows leave (or come back), the rows are made again
        in one pass, in sort order (hiding 729 of 1,000 rows one by one took half a second
        of one keystroke)."""
        self.filter_text = text
        wanted = {task_id for task_id, task in self.tasks.items() if matches(task, text)}
        leaving = self._rendered.keys() - wanted
        entering = wanted - self._rendered.keys()
        if len(leaving) > MANY_ROWS or len(entering) > MANY_ROWS:
            self._rebuild(wanted)
            return
        with self.app.batch_update():
            for task_id in leaving:
                self._hide(task_id)  # hidden, not deleted: the task stays known
            if entering:
                self.apply([self.tasks[task_id] for task_id in entering])

    def _rebuild(self, ids: set[str], *, columns: bool = False) -> None:
        """The rows `ids` made again in sort order (and the columns, if asked)."""
        selected = self.selected_task()
        key, reverse = SORTS[self.sort_name]
        shown = sorted((self.tasks[task_id] for task_id in ids), key=key, reverse=reverse)
        now, theme = self.now(), self.app.current_theme
        with self.app.batch_update():
            self.clear(columns=columns)
            if columns:
                labels = {c.key: c.label for c in COLUMNS}
                for name, width in self.widths.items():
                    self.add_column(labels[name], key=name, width=width)
            self._rendered, self._changed_cells = {}, set()
            for task in shown:
                cells = self._rendered[task.id] = row_cells(task, now, theme)
                self.add_row(*self._shown(cells), key=task.id)
            if selected is not None and selected.id in self._rendered:
                self.move_cursor(row=self.get_row_index(selected.id), animate=False)

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
        if "age" not in self.widths:
            return
        with self.app.batch_update():
            for task_id, cells in self._rendered.items():
                text = age(self.tasks[task_id].created_at, now)
                if cells["age"].plain != text:
                    cells["age"] = Text(text)
                    self._set_cell(task_id, "age", cells["age"])
            self._flush_cells()

    def refresh_cells(self) -> None:
        """Ages tick and theme colours change: re-render, still touching only changed cells."""
        self.apply(list(self.tasks.values()))
