"""Spawning through the form, on a real conductor (PostgreSQL, git, tmux, demo agent)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fleet_tui.domain.status import TaskStatus
from fleet_tui.domain.models import SYSTEM
from fleet_tui.ui.app import make_app
from fleet_tui.ui.screens.spawn import SpawnScreen
from tests.fixtures.engine import operator
from tests.ui.helpers import open_spawn_form, until

SIZE = (140, 40)


async def test_spawn_through_the_form_reaches_a_live_row(make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor()
    app = make_app(conductor=conductor, operator=operator(), repo=str(git_repo))
    async with app.run_test(size=SIZE) as pilot:
        await open_spawn_form(pilot)
        await pilot.press(*"add a flag\nFLEET-DEMO: sleep 30".replace("\n", " "))
        app.screen.query_one("#description").text = "add a --json flag\nFLEET-DEMO: sleep 30"
        await pilot.press("ctrl+s")
        table = app.main.table
        await until(pilot, lambda: len(table.tasks) == 1, what="a row")
        task_id = next(iter(table.tasks))
        await until(pilot, lambda: table.tasks[task_id].status == TaskStatus.RUNNING, what="running row")
        assert task_id in table.visible_ids
        # the row may run before the form has its answer (the bus is quicker than the call)
        await until(pilot, lambda: not isinstance(app.screen, SpawnScreen), timeout_s=10, what="the form closed")
        stored = await conductor.registry.get(task_id, operator=SYSTEM)
        assert stored.status == TaskStatus.RUNNING
        assert stored.repo == str(git_repo.resolve())


async def test_invalid_form_input_shows_the_fields_rule_and_creates_nothing(
        make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor()
    app = make_app(conductor=conductor, operator=operator(), repo=str(git_repo))
    async with app.run_test(size=SIZE) as pilot:
        form = await open_spawn_form(pilot)
        form.query_one("#description").text = "something"
        form.query_one("#priority").value = "250"
        await pilot.press("ctrl+s")
        await pilot.pause(0.2)
        error = str(form.query_one("#priority-error").render())
        assert "priority" in error and "100" in error
        assert str(form.query_one("#description-error").render()) == ""
        # the engine's own rule (repo must be a git repository) lands next to the repo field
        form.query_one("#priority").value = "50"
        form.query_one("#repo").value = str(git_repo.parent / "nowhere")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "no such directory" in str(form.query_one("#repo-error").render()),
                    what="repo error")
        assert isinstance(app.screen, SpawnScreen)
    summary = await conductor.status(SYSTEM, all_operators=True)
    assert summary.tasks == []


async def test_the_form_shows_every_fields_error_at_once_its_own_and_the_engines(
        make_conductor: Any, git_repo: Path) -> None:
    """A bad priority (the form's rule), a base branch the repository lacks and an unknown
    agent (the engine's): all three at once, not one per submit; then a missing directory
    and the agent, with the priority fixed. Nothing is created."""
    conductor = await make_conductor()
    app = make_app(conductor=conductor, operator=operator(), repo=str(git_repo))
    async with app.run_test(size=SIZE) as pilot:
        form = await open_spawn_form(pilot)
        form.query_one("#description").text = "all errors at once"
        for name, value in (("priority", "250"), ("base_branch", "no-such-branch"), ("agent", "nosuchagent")):
            form.query_one(f"#{name}").value = value
        await pilot.press("ctrl+s")

        def error(name: str) -> str:
            return str(form.query_one(f"#{name}-error").render())

        await until(pilot, lambda: "not submitted" in str(form.query_one("#admission").render()), what="verdict")
        assert "100" in error("priority")
        assert "no branch no-such-branch" in error("base_branch")
        assert "unknown agent profile 'nosuchagent'" in error("agent")
        assert error("repo") == "" and error("description") == ""

        form.query_one("#priority").value = "50"
        form.query_one("#repo").value = str(git_repo.parent / "nowhere")
        form.query_one("#base_branch").value = "bad..name"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "no such directory" in error("repo"), what="repo error")
        assert "'..'" in error("base_branch")  # its spelling is still checked
        assert "unknown agent profile" in error("agent")
        assert error("priority") == ""
        assert isinstance(app.screen, SpawnScreen)
    summary = await conductor.status(SYSTEM, all_operators=True)
    assert summary.tasks == []
