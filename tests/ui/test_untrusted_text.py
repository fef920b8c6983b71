"""Text the fleet did not write (descriptions, review comments, errors, filters) shows as
written: Rich and Textual parse a str as markup, so "[/]" would crash a frame and
"[@click=app.quit]" would become a button. Real conductor: PostgreSQL, git, tmux, demo agent."""

from __future__ import annotations

from datetime import datetime, UTC
from pathlib import Path
from typing import Any

from rich.console import Console
from textual.widgets import Static
from textual.widgets._toast import Toast

from fleet_tui.domain.models import SpawnRequest, TaskRecord
from fleet_tui.domain.status import TaskStatus
from fleet_tui.domain.models import SYSTEM
from fleet_tui.ui.app import make_app
from fleet_tui.ui.screens.detail import DetailScreen, audit_view, diff_view, verdicts_view
from fleet_tui.ui.screens.spawn import SpawnScreen
from tests.fixtures.engine import operator
from tests.ui.helpers import open_spawn_form, until

SIZE = (150, 40)
ESCAPES = "\x1b]0;retitled\x1b\\\x1b]52;c;Y2xpcGJvYXJk\x07\x1b[2J\x9b31m"  # title, clipboard, clear, C1 CSI
HOSTILE = "fix\x1b]0;retitled\x07 [/] and [@click=app.quit]this[/] in [bold]the parser" + ESCAPES
SHOWN = "fix [/] and [@click=app.quit]this[/]"  # what a person sees of it


def rendered(widget: Any) -> str:
    return str(widget.render())


async def test_a_description_with_markup_shows_as_written_in_table_detail_and_filter(
        make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor()
    await conductor.start()
    op = operator()
    task = (await conductor.spawn(op, SpawnRequest(description=f"{HOSTILE}\nFLEET-DEMO: sleep 30",
                                                   repo=str(git_repo)))).task
    app = make_app(conductor=conductor, operator=op)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, app.engine_ready.is_set, what="engine ready")
        table = app.main.table
        await until(pilot, lambda: task.id in table.visible_ids, what="the row")
        await pilot.pause(0.2)  # frames rendered with the row on screen
        cell = table.get_cell(task.id, "description")
        assert cell.plain.startswith(SHOWN)
        assert not cell.spans  # no style, no link, no action came out of the text
        assert "\x1b" not in cell.plain and "\x9b" not in cell.plain and "retitled" not in cell.plain

        await pilot.press("slash", *"[/]", "enter")
        await until(pilot, lambda: "filter: [/]" in rendered(app.main.query_one("#status-line")),
                    what="the filter in the status line")
        assert table.visible_ids == [task.id]

        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen), what="detail")
        await pilot.pause(0.2)
        meta = app.screen.query_one("#meta", Static)
        shown = _text(meta.content)
        assert SHOWN in shown and "\x1b" not in shown

        app.screen.notify("retry refused: [/] is not a [@click=app.quit]reason[/]" + ESCAPES, severity="error")
        await until(pilot, lambda: any("[@click=app.quit]reason[/]" in str(toast.render())
                                       for toast in app.screen.query(Toast)), what="the toast")
        assert not any("\x1b" in str(toast.render()) for toast in app.screen.query(Toast))
        assert app.is_running
    # the test would have raised the app's exception (MarkupError) on leaving run_test


async def test_spawn_form_errors_echoing_markup_show_as_written(make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor()
    app = make_app(conductor=conductor, operator=operator(), repo=str(git_repo))
    async with app.run_test(size=SIZE) as pilot:
        form = await open_spawn_form(pilot)
        form.query_one("#description").text = HOSTILE
        form.query_one("#repo").value = str(git_repo / "[/]nowhere")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "[/]nowhere" in rendered(form.query_one("#repo-error")), what="repo error")
        assert isinstance(app.screen, SpawnScreen)
    summary = await conductor.status(SYSTEM, all_operators=True)
    assert summary.tasks == []


def _record(**extra: Any) -> TaskRecord:
    now = datetime(2025, 5, 1, tzinfo=UTC)
    return TaskRecord(id="t1", operator_id="ana", status=TaskStatus.REJECTED, version=1,
                      description="x", repo="/r", base_branch="main", created_at=now, updated_at=now, **extra)


def _text(renderable: Any) -> str:
    console = Console(width=200, record=True)
    console.print(renderable)
    return console.export_text()


def test_review_comments_and_audit_reasons_show_as_written() -> None:
    verdicts = [{"reviewer": "[red]llm", "focus": "logic", "verdict": "request_changes",
                 "comments": ["drop the [/] branch", "[link=http://evil.example]click[/link]" + ESCAPES],
                 "error": "[b]timeout"}]
    text = _text(verdicts_view(_record(review_verdicts=verdicts)))
    for literal in ("[red]llm", "drop the [/] branch", "[link=http://evil.example]click[/link]", "[b]timeout"):
        assert literal in text
    assert "\x1b" not in text and "\x9b" not in text
    assert "\x1b" not in _text(diff_view("+print('hi')" + ESCAPES + "\n"))

    audit = [{"created_at": None, "actor": "[i]ana", "action": "stop", "from_status": "running",
              "to_status": "cancelled", "detail": {"reason": "asked [/] nicely"}}]
    text = _text(audit_view(audit))
    assert "[i]ana" in text and "asked [/] nicely" in text


