"""The main screen in-process (seeded fleet): a verb's key that does not apply says why,
the palette names the keys, help says how to close it, the banner is not a warning, the
preview pane opens on the selected task."""

from __future__ import annotations

from typing import Any

from textual.command import CommandPalette

from fleet_tui.ui.screens.help import HelpScreen
from fleet_tui.ui.verbs import applies, why_not
from fleet_tui.ui.widgets.preview import Preview
from fleet_tui.ui.widgets.tail_log import TailLog
from tests.ui.helpers import until
from tests.ui.seeded import seeded_app

SIZE = (150, 40)


def notices(app: Any) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_a_key_that_does_not_apply_says_why_and_runs_nothing() -> None:
    app: Any = seeded_app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, app.engine_ready.is_set, what="engine ready")
        table = app.main.table
        finished = next(t for t in table.tasks.values() if not applies("stop", t))
        app.main.select(finished.id)
        await pilot.pause(0.1)
        await pilot.press("s")
        await until(pilot, lambda: why_not("stop", finished) in notices(app), what="the reason")
        assert app.screen is app.main  # no dialog
        running = next(t for t in table.tasks.values() if not applies("merge", t) and applies("stop", t))
        app.main.select(running.id)
        await pilot.pause(0.1)
        await pilot.press("m")
        await until(pilot, lambda: "only a ready task can be merged" in " ".join(notices(app)), what="merge reason")


async def test_the_palette_and_help_name_their_keys() -> None:
    app: Any = seeded_app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, app.engine_ready.is_set, what="engine ready")
        from fleet_tui.ui.commands import FleetCommands

        provider = FleetCommands(app.screen)
        names = [name for name, _, _ in provider._commands()]
        for expected in ("attach to selected agent (key a)", "logs of selected task (key l)",
                         "diff of selected task (key d)", "refresh (key ctrl+r)", "preview selected agent's output (key p)"):
            assert expected in names
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        assert "Close this help with esc or ? or q" in str(app.screen.query_one("#help-close").render())
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main, what="help closed")
        await pilot.press("colon")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette), what="palette")


async def test_the_banner_is_information_not_a_warning() -> None:
    app: Any = seeded_app()
    app.banner = "database: embedded PostgreSQL under /tmp/x"
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, app.engine_ready.is_set, what="engine ready")
        banner = app.main.query_one("#banner")
        theme = app.current_theme
        background = banner.styles.background.hex.lower()
        assert background not in {str(theme.warning).lower(), str(theme.error).lower()}
        assert banner.styles.background.a == 1.0 or background  # a plain panel colour


async def test_the_preview_opens_on_the_selected_task_and_follows_the_cursor() -> None:
    app: Any = seeded_app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, app.engine_ready.is_set, what="engine ready")
        preview = app.main.query_one(Preview)
        assert not preview.display
        await pilot.press("p")
        first = app.main.selected().id
        await until(pilot, lambda: preview.task_id == first and preview.query_one(TailLog).received > 0,
                    what="the preview's lines")
        await pilot.press("down")
        second = app.main.selected().id
        await until(pilot, lambda: preview.task_id == second, what="the preview follows")
        await pilot.press("p")
        assert not preview.display


async def test_a_task_held_by_another_hosts_conductor_says_where_its_output_is(make_conductor: Any,
                                                                                git_repo: Any) -> None:
    """No log here, the lease held by a conductor on another host: the preview names that
    host instead of an empty pane (the detail Log tab reads the same follower)."""
    from fleet_tui.domain.status import TaskStatus
    from fleet_tui.ui.app import make_app
    from tests.fixtures.db import fetch
    from tests.fixtures.engine import operator

    conductor = await make_conductor()
    op = operator()
    task, _ = await conductor.governor.admit(
        op, description="runs on another host", repo=str(git_repo), base_branch="main", task_type="feature",
        agent="demo", model=None, runtime="tmux", priority=50, max_retries=3, idempotency_key="elsewhere",
        branch=None, trace_id=None)
    url = conductor.settings.database_url
    await fetch(url, "INSERT INTO fleet_conductors (id, host, pid) VALUES ('elsewhere-1', 'build-7.example', 4242)")
    await fetch(url, "INSERT INTO fleet_leases (task_id, owner, expires_at) VALUES ($1, 'elsewhere-1',"
                     " now() + interval '1 hour')", task.id)
    app = make_app(conductor=conductor, operator=op, start_monitor=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, app.engine_ready.is_set, what="engine ready")
        assert app.main.selected().status == TaskStatus.PROPOSED
        await pilot.press("p")
        log = app.main.query_one(Preview).query_one(TailLog)
        await until(pilot, lambda: "build-7.example" in "\n".join(log.lines), what="the host named")
        assert "no output on this host" in "\n".join(log.lines)
