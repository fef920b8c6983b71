"""Verbs on the selected task change the registry; verbs that do not apply are hidden.
Real conductor: PostgreSQL, git, tmux, the demo agent."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from fleet_tui.domain.errors import NotFoundError
from fleet_tui.domain.models import SpawnRequest
from fleet_tui.domain.status import TaskStatus
from fleet_tui.domain.models import SYSTEM
from fleet_tui.ui.app import make_app
from fleet_tui.ui.screens.confirm import ConfirmScreen
from fleet_tui.ui.screens.detail import DetailScreen
from fleet_tui.ui.widgets.tail_log import TailLog
from tests.fixtures.engine import operator
from tests.ui.helpers import footer_actions, until

S = TaskStatus
SIZE = (150, 40)


async def test_stop_then_delete_with_confirmation_change_the_registry(make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor()
    op = operator()
    task = (await conductor.spawn(op, SpawnRequest(description="long\nFLEET-DEMO: sleep 60",
                                                   repo=str(git_repo)))).task
    app = make_app(conductor=conductor, operator=op)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, app.engine_ready.is_set, what="engine ready")
        table = app.main.table
        assert table.selected_task().id == task.id
        await until(pilot, lambda: {"stop", "attach", "logs"} <= footer_actions(app), what="footer verbs")
        shown = footer_actions(app)
        assert not {"retry", "merge", "delete"} & shown  # not applicable to a running task

        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="stop asks first")
        assert (await conductor.registry.get(task.id, operator=SYSTEM)).status == S.RUNNING
        await pilot.press("y")
        await until(pilot, lambda: table.tasks[task.id].status == S.CANCELLED, what="cancelled row")
        assert (await conductor.registry.get(task.id, operator=SYSTEM)).status == S.CANCELLED
        await until(pilot, lambda: "delete" in footer_actions(app), what="delete offered")
        shown = footer_actions(app)
        assert "delete" in shown and "stop" not in shown and "attach" not in shown

        await pilot.press("ctrl+d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirmation")
        await pilot.press("n")  # declined: nothing changes
        await pilot.pause(0.3)
        assert (await conductor.registry.get(task.id, operator=SYSTEM)).status == S.CANCELLED

        await pilot.press("ctrl+d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirmation")
        await pilot.press("y")
        await until(pilot, lambda: task.id not in table.tasks, what="row removed")
        assert table.row_count == 0
    with pytest.raises(NotFoundError):
        await conductor.registry.get(task.id, operator=SYSTEM)


async def test_retry_relaunches_a_failed_task(make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor(retry__auto=False)  # failed tasks wait for the operator
    op = operator()
    task = (await conductor.spawn(op, SpawnRequest(description="flaky\nFLEET-DEMO: fail-until-attempt 2",
                                                   repo=str(git_repo)))).task
    app = make_app(conductor=conductor, operator=op)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, app.engine_ready.is_set, what="engine ready")
        table = app.main.table
        await until(pilot, lambda: table.tasks[task.id].status == S.FAILED, what="failed row")
        await until(pilot, lambda: {"retry", "stop"} <= footer_actions(app), what="retry offered")
        assert not {"merge", "delete", "attach"} & footer_actions(app)
        await pilot.press("r")
        await until(pilot, lambda: table.tasks[task.id].retry_count == 1
                    and table.tasks[task.id].status in (S.RUNNING, S.PR_CREATED), what="relaunched row")
    stored = await conductor.registry.get(task.id, operator=SYSTEM)
    assert stored.retry_count == 1 and stored.status != S.FAILED


async def test_filter_narrows_the_rows_and_escape_restores_them(make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor()
    op = operator()
    login = (await conductor.spawn(op, SpawnRequest(description="fix the flaky login test\nFLEET-DEMO: sleep 30",
                                                    repo=str(git_repo)))).task
    export = (await conductor.spawn(op, SpawnRequest(description="add --json to export\nFLEET-DEMO: sleep 30",
                                                     repo=str(git_repo)))).task
    app = make_app(conductor=conductor, operator=op)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, app.engine_ready.is_set, what="engine ready")
        table = app.main.table
        assert set(table.visible_ids) == {login.id, export.id}
        await pilot.press("slash", *"flaky login")
        await until(pilot, lambda: table.visible_ids == [login.id], what="filtered")
        assert "filter: flaky login" in str(app.main.query_one("#status-line").render())
        await pilot.press("enter")
        await pilot.press("escape")
        await until(pilot, lambda: set(table.visible_ids) == {login.id, export.id}, what="unfiltered")


async def test_detail_log_shows_what_the_demo_agent_prints(make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor()
    await conductor.start()
    op = operator()
    task = (await conductor.spawn(op, SpawnRequest(description="talk\nFLEET-DEMO: flood 300\nFLEET-DEMO: sleep 5",
                                                   repo=str(git_repo)))).task
    app = make_app(conductor=conductor, operator=op)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, app.engine_ready.is_set, what="engine ready")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen), what="detail")
        log = app.screen.query_one(TailLog)
        await until(pilot, lambda: log.line_count >= 300, what="flooded lines")
        text = "\n".join(log.lines)
        assert "[demo]" in text
        assert "\x1b" not in text
        assert app.screen.record.id == task.id
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, DetailScreen), what="back")


async def test_quitting_while_the_detail_screen_is_being_built_exits_cleanly(
        make_conductor: Any, git_repo: Path) -> None:
    """The app may exit (ctrl+c, an engine failure) while a screen is still composing; its
    widgets are removed under it and nothing may then look for them."""
    conductor = await make_conductor()
    await conductor.start()
    op = operator()
    await conductor.spawn(op, SpawnRequest(description="idle\nFLEET-DEMO: sleep 30", repo=str(git_repo)))
    for turns in range(10):  # exit at a different point of the screen's composition each time
        app = make_app(conductor=conductor, operator=op, start_monitor=False)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda app=app: app.engine_ready.is_set() and app.main.table.row_count == 1,
                        what="the row")
            app.main.action_diff()  # what `d` does: the detail screen, opened on its diff tab
            for _ in range(turns):
                await asyncio.sleep(0)
            app.exit()
        # run_test raises what the app raised while closing
        assert app.return_code == 0
