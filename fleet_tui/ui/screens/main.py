"""The main screen: the live task table, headroom and health, a status line, the verbs."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Input, LoadingIndicator, Static

from fleet_tui.domain.models import SpawnResult, TaskRecord
from fleet_tui.domain.status import LIVE_STATUSES, PROCESS_STATUSES, TaskStatus
from fleet_tui.ui.format import plain
from fleet_tui.ui.messages import LogLines
from fleet_tui.ui.room import control_room
from fleet_tui.ui.screens.detail import DetailScreen
from fleet_tui.ui.screens.spawn import SpawnScreen
from fleet_tui.ui.verbs import TASK_VERBS, TaskVerbActions, applies, say_why_refused
from fleet_tui.ui.widgets.fleet_panels import HeadroomPanel, HealthPanel
from fleet_tui.ui.widgets.preview import PREVIEW_TAIL, Preview
from fleet_tui.ui.widgets.task_table import SORTS, TaskTable
from fleet_tui.ui.widgets.verb_footer import VerbFooter

SORT_ORDER = list(SORTS)
FIGURES_EVERY_S = 0.25  # status line and headroom recounted at most this often under a stream
QUEUED = (TaskStatus.PROPOSED, TaskStatus.RETRYING)
SIDE_PANEL_FROM = 120  # terminal columns from which headroom and health show beside the table
PREVIEW_AFTER_S = 0.12  # the cursor rests this long before the preview reads the new task's output

MAIN_BINDINGS: list[BindingType] = [
    Binding("n", "new", "New", id="fleet.new", tooltip="Spawn a new task"),
    Binding("enter", "detail", "Detail", id="fleet.detail", tooltip="Open the selected task"),
    Binding("l", "logs", "Logs", id="fleet.logs", tooltip="The selected agent's output, live"),
    Binding("a", "attach", "Attach", id="fleet.attach", tooltip="Put your terminal on the agent"),
    Binding("p", "preview", "Preview", id="fleet.preview",
            tooltip="Show or hide the selected agent's output under the table"),
    Binding("s", "stop", "Stop", id="fleet.stop", tooltip="Stop the agent; the task is cancelled (asks first)"),
    Binding("r", "retry", "Retry", id="fleet.retry", tooltip="Retry a failed or rejected task"),
    Binding("ctrl+d", "delete", "Delete", id="fleet.delete", tooltip="Delete a finished task (asks first)"),
    Binding("m", "merge", "Merge", id="fleet.merge", tooltip="Merge a ready task (asks first)"),
    Binding("d", "diff", "Diff", id="fleet.diff", tooltip="The change against its base"),
    Binding("slash", "filter", "Filter", id="fleet.filter", tooltip="Filter rows by words"),
    Binding("o", "sort", "Sort", id="fleet.sort", tooltip="Cycle the sort order"),
    Binding("ctrl+r", "refresh", "Refresh", id="fleet.refresh", show=False,
            tooltip="Read every task again from the database"),
    Binding("colon", "command", "Commands", id="fleet.command", tooltip="Command palette"),
    Binding("question_mark", "help", "Help", id="fleet.help", tooltip="Every key"),
    Binding("q", "quit", "Quit", id="fleet.quit", tooltip="Quit; agents keep running unless you say"),
]


class MainScreen(TaskVerbActions, Screen[None]):
    BINDINGS = MAIN_BINDINGS
    _verbs: tuple[str, ...] = ()
    _status_text = ""
    _figures_timer: Timer | None = None
    _preview_timer: Timer | None = None
    _loaded = False  # the tasks are on screen (before: the loading step shows)

    def compose(self) -> ComposeResult:
        app = control_room(self.app)
        yield Static("", id="status-line")
        with Horizontal(id="body"):
            with Vertical(id="tasks"):
                yield Input(placeholder="filter: words that must all appear (esc clears)", id="filter")
                self._table = TaskTable(app.now, id="table")
                yield self._table
                yield Static("", id="empty-hint")
                yield Preview(id="preview")
                with Vertical(id="loading"):
                    yield LoadingIndicator()
                    yield Static("starting…", id="loading-step")
            with Vertical(id="side"):
                yield Static("Governor headroom", classes="panel-title")
                yield HeadroomPanel(id="headroom")
                yield Static("Health", classes="panel-title")
                yield HealthPanel(id="health")
        yield Static("", id="banner")
        yield VerbFooter()

    @property
    def table(self) -> TaskTable:
        return self._table

    def on_resize(self, event: events.Resize) -> None:
        # a narrow terminal gives the table all its width
        self.query_one("#side").display = event.size.width >= SIDE_PANEL_FROM

    def on_mount(self) -> None:
        app = control_room(self.app)
        self.query_one("#filter", Input).display = False
        self.query_one("#preview").display = False
        self.query_one("#empty-hint").display = False
        self.query_one("#tasks").add_class("-empty")
        self.show_banner(app.banner)
        self.table.focus()
        app.screen_ready.set()

    # --- fed by the app's @on handlers ---------------------------------------------------

    def progress(self, step: str) -> None:
        self.query_one("#loading-step", Static).update(plain(step))

    def ready(self, tasks: list[TaskRecord]) -> None:
        # removed, not hidden: a hidden LoadingIndicator keeps its animation timer running
        self.query_one("#loading").remove()
        self._loaded = True
        self.table.apply(tasks)
        self.after_change()

    def failed(self, error: str) -> None:
        self.query_one(LoadingIndicator).display = False
        self.query_one("#loading-step", Static).update(
            Text.assemble(("the engine did not start: ", "bold red"), plain(error)))

    def apply(self, changed: list[TaskRecord], deleted: set[str]) -> None:
        """A batch from the engine: rows now; the figures (a count over every task) at most
        every FIGURES_EVERY_S, however many batches arrive."""
        self.table.apply(changed, deleted)
        self.refresh_verbs()
        preview = self.preview
        if preview.display and preview.task_id is not None:
            task = next((t for t in changed if t.id == preview.task_id), None)
            if task is not None and preview.update_task(task):
                self._stop_preview()  # its output began after the stream ended: read it again
                self._preview_selected()
        if self._figures_timer is None:
            self._figures_timer = self.set_timer(FIGURES_EVERY_S, self._figures_due)

    def _figures_due(self) -> None:
        self._figures_timer = None
        self.show_figures()

    def show_health(self, health: dict[str, Any]) -> None:
        for panel in self.query(HealthPanel):  # none once the app quits: its widgets go one by one
            panel.show(health)

    def theme_changed(self, health: dict[str, Any]) -> None:
        """Cells and the health panel take their colours from the theme: render them again."""
        self.table.refresh_cells()
        panel = self.query_one(HealthPanel)
        panel.forget()
        if health:
            panel.show(health)

    def show_banner(self, text: str) -> None:
        banner = self.query_one("#banner", Static)
        banner.update(plain(text))
        banner.display = bool(text)

    def after_change(self) -> None:
        """The operator changed the view (load, filter, sort, spawn): figures at once."""
        self.show_figures()
        self.refresh_verbs()

    def show_empty_hint(self) -> None:
        """An empty fleet says what `n` does and on which repository."""
        hint = self.query_one("#empty-hint", Static)
        empty = self._loaded and not self.table.tasks
        if empty:
            app = control_room(self.app)
            repo = app.default_repo
            where = (f"its repository defaults to {repo} (the form lets you change it)" if repo
                     else "the form asks for its repository")
            hint.update(Text.assemble("No tasks yet. Press ", ("n", "bold"), " to start a task: ",
                                      plain(where), ".\nPress ", ("?", "bold"), " for every key."))
        if hint.display != empty:
            hint.display = empty
        # no rows: the header, then the loading step or the hint, at the top
        self.query_one("#tasks").set_class(not self.table.tasks, "-empty")

    def show_figures(self) -> None:
        """Status line and headroom from one pass over the tasks; each repaints only if its
        text changed."""
        app = control_room(self.app)
        table = self.table
        tasks = table.tasks
        # a slot is held by every task not finished (ready ones too, until merged): what the
        # governor counts; agents are the processes running now
        live: dict[str, int] = {}
        queued: dict[str, int] = {}
        agents = 0
        for t in tasks.values():
            op = t.operator_id
            live[op] = live.get(op, 0) + (t.status in LIVE_STATUSES)
            queued[op] = queued.get(op, 0) + (t.status in QUEUED)
            agents += t.status in PROCESS_STATUSES
        mine_live = live.get(app.operator.id, 0)
        fleet_live = sum(live.values())
        limit = app.governor_limit()
        capacity = app.fleet_capacity()
        parts = [f"{agents} agent{'' if agents == 1 else 's'} running", f"fleet {fleet_live}/{capacity} slots",
                 f"you ({app.operator.id}, {app.operator.tier}) {mine_live}/{limit} slots",
                 f"{table.row_count}/{len(tasks)} tasks shown", f"sort: {table.sort_name}"]
        if table.filter_text:
            parts.append(f"filter: {table.filter_text}")
        text = " │ ".join(parts)
        self.show_empty_hint()
        if text != self._status_text:
            self._status_text = text
            self.query_one("#status-line", Static).update(plain(text), layout=False)  # one line, always
        self.query_one(HeadroomPanel).show(live, queued, me=app.operator.id, my_limit=limit,
                                           fleet_capacity=capacity, agents=agents)

    # --- selection and check_action --------------------------------------------------------

    def selected(self) -> TaskRecord | None:
        return self.table.selected_task()

    def verb_task(self) -> TaskRecord | None:
        return self.selected()

    def select(self, task_id: str) -> None:
        table = self.table
        if task_id in table.rows:
            table.move_cursor(row=table.get_row_index(task_id), animate=False)

    @on(DataTable.RowHighlighted)
    def _highlighted(self) -> None:
        self.refresh_verbs()
        if self.preview.display:
            # the cursor may be passing by: read the output where it comes to rest
            if self._preview_timer is not None:
                self._preview_timer.stop()
            self._preview_timer = self.set_timer(PREVIEW_AFTER_S, self._preview_selected)

    # --- the preview pane ------------------------------------------------------------------

    @property
    def preview(self) -> Preview:
        return self.query_one(Preview)

    def action_preview(self) -> None:
        preview = self.preview
        preview.display = not preview.display
        if preview.display:
            self._preview_selected()
        else:
            self._stop_preview()

    def _preview_selected(self) -> None:
        self._preview_timer = None
        if not self.preview.display:
            return
        task = self.selected()
        if self.preview.show(task) and task is not None:
            app = control_room(self.app)
            app.follow_logs(task.id, self, group="preview", tail=PREVIEW_TAIL)

    def _stop_preview(self) -> None:
        app = control_room(self.app)
        app.stop_following("preview")
        self.preview.forget()

    def on_screen_suspend(self) -> None:
        # another screen (detail, form, dialog) on top: its own follower, none here meanwhile
        if self.preview.display:
            self._stop_preview()

    def on_screen_resume(self) -> None:
        if self._loaded and self.preview.display:
            self._preview_selected()

    @on(LogLines)
    def _preview_lines(self, message: LogLines) -> None:
        self.preview.lines(message)

    def refresh_verbs(self) -> None:
        """Refresh the footer only when the applicable verbs change: recomposing it on
        every cursor move costs more than the move itself."""
        task = self.selected()
        verbs = tuple(sorted(v for v in TASK_VERBS if applies(v, task)))
        if verbs != self._verbs:
            self._verbs = verbs
            self.refresh_bindings()

    @on(DataTable.RowSelected)
    def _row_selected(self) -> None:
        self.action_detail()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in TASK_VERBS and not self.every_verb:
            return applies(action, self.selected())
        return True

    def on_key(self, event: events.Key) -> None:
        """A verb's key that does not apply to the selected task (check_action hid it, so
        no binding ran) says why instead of doing nothing."""
        if self.table.has_focus:
            say_why_refused(self, event, self.selected())

    # --- verbs ---------------------------------------------------------------------------

    def action_new(self) -> None:
        app = control_room(self.app)

        def spawned(result: SpawnResult | None) -> None:
            if result is None:
                return
            if result.task is None:
                self.notify(f"queued (#{result.queue_id}): the fleet is at capacity", title="spawn")
                return
            self.table.apply([result.task])
            self.after_change()
            self.select(result.task.id)
            word = "queued" if result.queued else ("admitted" if result.created else "already exists")
            self.notify(f"{word}: task {result.task.id} ({result.task.status})", title="spawn")
            if result.notice:
                self.notify(result.notice, title="agent", timeout=12)

        self.app.push_screen(SpawnScreen(app.default_repo), spawned)

    def action_detail(self, tab: str = "log") -> None:
        task = self.selected()
        if task is not None:
            self.app.push_screen(DetailScreen(task, tab=tab))

    def action_logs(self) -> None:
        self.action_detail("log")

    def action_diff(self) -> None:
        self.action_detail("diff")

    async def action_attach(self) -> None:
        task = self.selected()
        if task is not None:
            app = control_room(self.app)
            await app.attach(task)

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.table.set_filter(event.value)
        self.after_change()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.table.focus()

    def key_escape(self) -> None:
        box = self.query_one("#filter", Input)
        if box.display:
            box.value = ""
            box.display = False
            self.table.focus()

    def action_sort(self) -> None:
        table = self.table
        table.set_sort(SORT_ORDER[(SORT_ORDER.index(table.sort_name) + 1) % len(SORT_ORDER)])
        self.after_change()

    def action_refresh(self) -> None:
        if self._loaded:
            self.run_worker(self._refresh(), group="refresh", exclusive=True, exit_on_error=False)

    async def _refresh(self) -> None:
        """The table made to match the database (changes arrive live anyway: this is for
        when the operator doubts it)."""
        app = control_room(self.app)
        tasks = await app.read_tasks()
        gone = set(self.table.tasks) - {t.id for t in tasks}
        self.table.apply(tasks, gone)
        self.after_change()
        self.notify(f"{len(tasks)} tasks read from the database", title="refresh", timeout=3)

    def action_command(self) -> None:
        self.app.action_command_palette()

    def action_help(self) -> None:
        app = control_room(self.app)
        app.show_help()

    async def action_quit(self) -> None:
        await self.app.action_quit()
