"""The observer face: the control room over a database whose conductor is another process
(`python -m fleet_tui --headless`). It lists the fleet, spawns and stops through commands
that conductor carries out, shows the agent's log, and follows the conductor's own
changes through NOTIFY. Real PostgreSQL, tmux, git and the demo agent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fleet_tui.domain.models import SpawnRequest
from fleet_tui.domain.status import TaskStatus
from fleet_tui.domain.models import SYSTEM
from fleet_tui.engine.observer.observer import Observer
from fleet_tui.store import leases
from fleet_tui.ui.app import make_app
from fleet_tui.ui.launch import observer_banner
from fleet_tui.ui.screens.detail import DetailScreen
from fleet_tui.ui.screens.spawn import SpawnScreen
from fleet_tui.ui.widgets.tail_log import TailLog
from tests.e2e.conductors import Fleet
from tests.e2e.test_multi_conductor import wait_until
from tests.fixtures.db import settings_for
from tests.fixtures.engine import operator
from tests.ui.helpers import until

S = TaskStatus
SIZE = (150, 40)


async def test_observer_app_drives_a_conductor_running_in_another_process(
        make_conductor: Any, git_repo: Path) -> None:
    # `local` only makes the database and one task before the remote conductor starts; it
    # runs no monitor and no workers, so whatever happens next is the remote's doing
    local = await make_conductor()
    op = operator()
    existing = (await local.spawn(op, SpawnRequest(description="already here\nFLEET-DEMO: wait-input",
                                                   repo=str(git_repo)))).task
    await leases.release(local.parts.db, local.conductor_id)  # its spawn lease: the remote watches it
    s = local.settings
    fleet = Fleet(s.database_url or "", s.data_dir.parent, s.runtime.tmux_socket)
    fleet.extra_env["FLEET_RETRY__AUTO"] = "false"  # a failed task stays failed
    remote = fleet.start_conductor("remote")
    observer = Observer(s, local.parts.db, operator=op, timeout_s=20)
    try:
        remote_id = await fleet.conductor_id(remote.pid)
        app = make_app(conductor=observer, operator=op, repo=str(git_repo))
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, app.engine_ready.is_set, what="engine ready")
            table = app.main.table
            assert set(table.tasks) == {existing.id}  # listed from the database

            await pilot.press("enter")  # the log comes from the remote conductor's logs command
            await until(pilot, lambda: isinstance(app.screen, DetailScreen), what="detail")
            log = app.screen.query_one(TailLog)
            await until(pilot, lambda: any("[demo]" in line for line in log.lines), what="the agent's output")
            await pilot.press("escape")

            await pilot.press("n")
            await until(pilot, lambda: isinstance(app.screen, SpawnScreen), what="spawn form")
            app.screen.query_one("#description").text = "spawned by an observer\nFLEET-DEMO: sleep 60"
            await pilot.press("ctrl+s")
            await until(pilot, lambda: len(table.tasks) == 2, what="the spawned row")
            new_id = next(t for t in table.tasks if t != existing.id)
            await until(pilot, lambda: table.tasks[new_id].status == S.RUNNING, what="running row")
            assert (await local.registry.get(new_id, operator=SYSTEM)).operator_id == op.id

            app.main.select(new_id)
            await pilot.press("s", "y")  # stop, and yes to the question
            await until(pilot, lambda: table.tasks[new_id].status == S.CANCELLED, what="cancelled row")
            assert (await local.registry.get(new_id, operator=SYSTEM)).status == S.CANCELLED
            done: list[Any] = []

            async def commands_done() -> bool:  # stop answers once the agent is killed too
                # the detail screen's reads (logs, and diff when its load finishes first) aside
                done[:] = await fleet.query("SELECT verb, status, claimed_by FROM fleet_commands"
                                            " WHERE verb NOT IN ('logs', 'diff') ORDER BY id")
                return all(r["status"] == "done" for r in done)
            await wait_until(commands_done, 15, "the stop command's answer")
            assert [(r["verb"], r["claimed_by"]) for r in done] == [("spawn", remote_id), ("stop", remote_id)]

            # the first agent waits for an answer; told no, it exits 1 and the remote's monitor
            # fails the task: that change reaches this face through NOTIFY only
            assert table.tasks[existing.id].status == S.RUNNING
            await local.runtime_for(existing.runtime).send_input(existing.id, "n")
            await until(pilot, lambda: table.tasks[existing.id].status == S.FAILED, what="failed row")
            assert table.tasks[existing.id].failure_reason == "agent_exit"
            assert app.engine_health()["conductors"] >= 1
    finally:
        code = remote.terminate()
        await observer.shutdown()
    assert code == 0, remote.tail()


async def test_attach_path_opens_and_closes_its_own_observer_and_says_no_conductor_runs(
        fresh_database: Any, tmp_path: Path) -> None:
    url = await fresh_database()
    app = make_app(settings_for(url, tmp_path / "data"), observe=True, banner=observer_banner(url))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, app.engine_ready.is_set, what="engine ready")
        observer = app.conductor
        assert isinstance(observer, Observer) and observer.monitor is not None
        assert "conductor runs elsewhere" in str(app.main.query_one("#banner").render())
        assert app.health["running"] is False and app.health["degraded"]  # nobody beats in this fleet
        await app.shutdown()
    assert observer.db.pool.is_closing()  # the app opened it, the app closed it
