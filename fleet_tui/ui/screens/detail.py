"""One task: metadata and attempts, the live log, the diff, review verdicts, the audit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.theme import Theme
from textual.visual import VisualType
from textual.widgets import Footer, Static, TabbedContent, TabPane

from fleet_tui.domain.errors import FleetError
from fleet_tui.domain.models import TaskRecord
from fleet_tui.domain.text import strip_ansi
from fleet_tui.ui.format import add_plain_row, age, agent_cell, attempts_cell, plain, status_cell
from fleet_tui.ui.messages import LogLines
from fleet_tui.ui.room import control_room
from fleet_tui.ui.verbs import TASK_VERBS, TaskVerbActions, applies, say_why_refused
from fleet_tui.ui.widgets.tail_log import TailLog

TABS = {"log": "tab-log", "diff": "tab-diff", "reviews": "tab-reviews", "audit": "tab-audit"}
AGE_TICK_S = 5.0  # as often as the table's AGE column
VERDICT_STYLE = {"approve": "green", "request_changes": "red", "comment": "yellow"}


def metadata_table(task: TaskRecord, now: datetime, theme: Theme) -> Table:
    grid = Table.grid(padding=(0, 2))
    for _ in range(4):
        grid.add_column()
    add_plain_row(grid, Text("task", style="bold"), task.id, Text("status", style="bold"),
                  status_cell(task.status, theme))
    add_plain_row(grid, Text("agent", style="bold"), agent_cell(task), Text("attempt", style="bold"),
                  attempts_cell(task))
    add_plain_row(grid, Text("branch", style="bold"), f"{task.branch or '-'} <- {task.base_branch}",
                  Text("age", style="bold"), age(task.created_at, now))
    add_plain_row(grid, Text("repo", style="bold"), task.repo, Text("ci/review", style="bold"),
                  f"{task.ci_status or '-'} / {task.review_status or '-'}")
    add_plain_row(grid, Text("type", style="bold"), f"{task.task_type} (priority {task.priority})",
                  Text("operator", style="bold"), task.operator_id)
    if task.failure_reason:
        add_plain_row(grid, Text("failure", style="bold red"), task.failure_reason, "", "")
    add_plain_row(grid, Text("asked", style="bold"), task.description.strip().splitlines()[0][:100], "", "")
    return grid


def attempts_table(executions: list[dict[str, Any]]) -> Table:
    table = Table(box=None, padding=(0, 1), header_style="bold")
    for name in ("attempt", "agent/model", "started", "exit", "failure"):
        table.add_column(name)
    for run in executions:
        started = run.get("started_at")
        add_plain_row(table, str(run.get("attempt")), f"{run.get('agent') or '-'}/{run.get('model') or '-'}",
                      started.strftime("%H:%M:%S") if started else "-",
                      "-" if run.get("exit_code") is None else str(run["exit_code"]),
                      str(run.get("failure") or "")[:60])
    if not executions:
        add_plain_row(table, "-", "no attempts yet", "", "", "")
    return table


def verdicts_view(task: TaskRecord) -> Table | Text:
    if not task.review_verdicts:
        return Text("no review verdicts yet", style="dim")
    table = Table(box=None, padding=(0, 1), header_style="bold", show_lines=False)
    table.add_column("reviewer")
    table.add_column("focus")
    table.add_column("verdict")
    table.add_column("comments")
    for verdict in task.review_verdicts:
        kind = str(verdict.get("verdict", "comment"))
        comments = "\n".join(f"• {c}" for c in verdict.get("comments") or []) or "-"
        if verdict.get("error"):
            comments += f"\n(error: {verdict['error']})"
        add_plain_row(table, str(verdict.get("reviewer", "?")), str(verdict.get("focus", "")),
                      plain(kind, style=f"bold {VERDICT_STYLE.get(kind, '')}"), comments)
    return table


def audit_view(audit: list[dict[str, Any]]) -> Table:
    table = Table(box=None, padding=(0, 1), header_style="bold")
    for name in ("time", "actor", "action", "change", "detail"):
        table.add_column(name)
    for entry in audit:
        at = entry.get("created_at")
        change = f"{entry.get('from_status') or ''} → {entry.get('to_status')}" if entry.get("to_status") else ""
        detail = entry.get("detail") or {}
        reason = detail.get("reason") if isinstance(detail, dict) else None
        add_plain_row(table, at.strftime("%H:%M:%S") if at else "-", str(entry.get("actor", "")),
                      str(entry.get("action", "")), change, str(reason or "")[:70])
    return table


def diff_view(diff: str) -> Syntax | Text:
    if not diff.strip():
        return Text("no change yet", style="dim")
    # the diff holds what the agent wrote: no terminal control sequence reaches the screen
    return Syntax(strip_ansi(diff), "diff", theme="ansi_dark", word_wrap=False, line_numbers=False)


class DetailScreen(TaskVerbActions, Screen[None]):
    BINDINGS = [
        Binding("escape,backspace", "back", "Back", id="detail.back"),
        Binding("l", "tab('log')", "Log", id="detail.log", tooltip="The agent's output, live"),
        Binding("d", "tab('diff')", "Diff", id="detail.diff", tooltip="The change against base"),
        Binding("v", "tab('reviews')", "Verdicts", id="detail.reviews"),
        Binding("t", "tab('audit')", "Audit", id="detail.audit"),
        Binding("end,f", "follow", "Follow tail", id="detail.follow"),
        Binding("a", "attach", "Attach", id="detail.attach", tooltip="Put your terminal on the agent"),
        Binding("s", "stop", "Stop", id="detail.stop", tooltip="Stop the agent; the task is cancelled (asks first)"),
        Binding("r", "retry", "Retry", id="detail.retry", tooltip="Retry a failed or rejected task"),
        Binding("m", "merge", "Merge", id="detail.merge", tooltip="Merge a ready task (asks first)"),
    ]

    def __init__(self, task: TaskRecord, tab: str = "log") -> None:
        super().__init__()
        self.record = task
        self.first_tab = tab

    def compose(self) -> ComposeResult:
        with Horizontal(id="detail-top"):
            yield Static(self._metadata(), id="meta")
            yield Static(attempts_table([]), id="attempts")
        # no initial=: its tabs would check for their own children on mount, which fails
        # when the app exits while this screen is still being put together
        with TabbedContent():
            with TabPane("Log", id="tab-log"):
                yield TailLog(id="log")
                yield Static("", id="log-marker")
            with TabPane("Diff", id="tab-diff"):
                with VerticalScroll():
                    yield Static(Text("loading diff…", style="dim"), id="diff")
            with TabPane("Verdicts", id="tab-reviews"):
                with VerticalScroll():
                    yield Static(verdicts_view(self.record), id="verdicts")
            with TabPane("Audit", id="tab-audit"):
                with VerticalScroll():
                    yield Static(Text("loading audit…", style="dim"), id="audit")
        yield Footer()

    def _metadata(self) -> Table:
        return metadata_table(self.record, control_room(self.app).now(), self.app.current_theme)

    def on_mount(self) -> None:
        app = control_room(self.app)
        if not (self.app.is_running and self.is_attached):
            return  # the app is closing: this screen's children are already being removed
        self.query_one(TabbedContent).active = TABS.get(self.first_tab, "tab-log")
        self.watch(self.query_one(TailLog), "unseen", self._show_marker, init=False)
        app.follow_logs(self.record.id, self)
        self.set_interval(AGE_TICK_S, self._tick_age)  # age keeps counting with no change to the task
        self.run_worker(self._load(), group="detail-load", exclusive=True)

    def on_unmount(self) -> None:
        control_room(self.app).stop_following()

    async def _load(self) -> None:
        app = control_room(self.app)
        detail = await app.fleet.detail(app.operator, self.record.id)
        self._put("#attempts", attempts_table(detail.executions))
        self._put("#audit", audit_view(detail.audit))
        try:
            diff = await app.fleet.diff(app.operator, self.record.id) if self.record.branch else ""
        except FleetError as exc:  # e.g. an observer's conductor did not answer
            self._put("#diff", plain(f"diff unavailable: {exc}", style="yellow"))
            return
        self._put("#diff", diff_view(diff))

    def _put(self, selector: str, content: VisualType) -> None:
        """Show what a read brought, unless the operator left the screen while it was read
        (esc right after enter): its widgets are gone, and a failed query in this worker
        ended the whole app."""
        for widget in self.query(selector).results(Static):  # none once the screen is gone
            widget.update(content)

    # --- live updates, from the app's @on handlers ----------------------------------------

    def _tick_age(self) -> None:
        self.query_one("#meta", Static).update(self._metadata())

    def task_changed(self, task: TaskRecord) -> None:
        status_moved = task.status != self.record.status
        self.record = task
        self.query_one("#meta", Static).update(self._metadata())
        self.query_one("#verdicts", Static).update(verdicts_view(task))
        if status_moved:
            self.run_worker(self._load(), group="detail-load", exclusive=True)
        self.refresh_bindings()

    @on(LogLines)
    def _log_lines(self, message: LogLines) -> None:
        if message.task_id != self.record.id:
            return
        log = self.query_one(TailLog)
        if message.lines:
            log.write_batch(message.lines)
        if message.ended and log.received == 0:
            log.write_line("(no output recorded for this task)")
        self._show_marker(log.unseen)

    def _show_marker(self, unseen: int) -> None:
        marker = self.query_one("#log-marker", Static)
        marker.update(f"+{unseen} new — press End to follow" if unseen else "")
        marker.set_class(unseen > 0, "shown")

    # --- actions -------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in TASK_VERBS:  # always in the footer, dimmed while it does not apply
            return True if applies(action, self.record) else None
        return True

    def on_key(self, event: events.Key) -> None:
        say_why_refused(self, event, self.record)  # a dimmed verb's key

    def action_back(self) -> None:
        self.dismiss(None)

    def action_tab(self, name: str) -> None:
        self.query_one(TabbedContent).active = TABS[name]

    def action_follow(self) -> None:
        self.query_one(TailLog).follow()
        self._show_marker(0)

    async def action_attach(self) -> None:
        await control_room(self.app).attach(self.record)

    def verb_task(self) -> TaskRecord:
        return self.record
