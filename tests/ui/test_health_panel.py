"""The health panel: monitor status with the fleet's figures (outbox lag, dead letters, open
breakers, spawn queue) read through fleet_health() every few seconds; warning colours past
the thresholds; a conductor without fleet_health, or whose read fails, still shows the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from fleet_tui.domain.status import TaskStatus
from fleet_tui.engine.kit.breaker import BreakerState
from fleet_tui.ui.app import make_app
from fleet_tui.ui.widgets.fleet_panels import HealthPanel
from tests.fixtures.engine import operator
from tests.ui.helpers import until
from tests.ui.seeded import FLEET_FIGURES, ME, SeededConductor, frozen_now

SIZE = (150, 40)


def panel_rows(app: Any) -> dict[str, Text]:
    """label -> value cell of the health panel as shown now."""
    grid = app.main.query_one(HealthPanel).content
    if isinstance(grid, Group):  # the grid, then the log's line
        grid = grid.renderables[0]
    assert isinstance(grid, Table)
    labels, values = grid.columns[0].cells, grid.columns[1].cells
    return {str(label): value if isinstance(value, Text) else Text(str(value)) for label, value in zip(labels, values)}


def shown(app: Any) -> dict[str, str]:
    return {label: value.plain for label, value in panel_rows(app).items()}


def colour(app: Any, label: str) -> str:
    return str(panel_rows(app)[label].style).replace(" bold", "")


async def test_a_real_fleets_dead_letters_open_breakers_and_outbox_reach_the_panel(make_conductor: Any) -> None:
    conductor = await make_conductor()
    op = operator()

    async def boom(step: Any, ctx: Any) -> dict[str, Any]:
        raise RuntimeError("the webhook is down")

    # a dead letter, through the engine: a critical step that fails lands in the DLQ
    conductor.router.adapters.register("test_boom", boom)
    await conductor.router.admin.upsert(op, "sequence", {"name": "fragile", "steps": [
        {"name": "notify", "adapter": "test_boom", "criticality": "critical", "retries": 0}]})
    result = await conductor.router.router.run("fragile", {"task_id": "t1"}, operator_id=op.id, event_type="ev")
    assert result.dead_letter_id is not None and await conductor.router.dlq.depth() == 1
    # an open breaker: failures past its threshold
    breaker = conductor.router.breakers.get("adapter:webhook")
    while breaker.state is not BreakerState.OPEN:
        breaker.record_failure()
    # outbox rows no relay delivers (this app does not own the engine, so starts no relay)
    task, _ = await conductor.governor.admit(
        op, description="finished", repo="/tmp/repo", base_branch="main", task_type="feature", agent="demo",
        model=None, runtime="tmux", priority=50, max_retries=3, idempotency_key=None, branch=None, trace_id=None)
    await conductor.move(task, TaskStatus.CANCELLED, actor="test", reason="seeded")

    app = make_app(conductor=conductor, operator=op)
    app.health_poll_s = 0.2
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, app.engine_ready.is_set, what="engine ready")
        rows = shown(app)
        assert rows["monitor"] == "running"
        assert rows["dead letters"] == "1"
        assert rows["breakers"] == "1 open"
        assert rows["outbox lag"].endswith("pending)")  # e.g. "0.1 s (2 pending)"
        theme = app.current_theme
        assert colour(app, "dead letters") == theme.error and colour(app, "breakers") == theme.error

        # the panel follows the fleet: a second letter arrives with a later read
        await conductor.router.router.run("fragile", {"task_id": "t2"}, operator_id=op.id, event_type="ev")
        await until(pilot, lambda: shown(app)["dead letters"] == "2", timeout_s=10, what="the second letter")
        assert app.health["dlq_depth"] == 2 and app.health["running"] is True
        await app.shutdown()


class FiguresConductor(SeededConductor):
    """The seeded fleet with figures of our choosing; reads are counted."""

    def __init__(self, figures: dict[str, Any] | Exception) -> None:
        super().__init__()
        self.figures = figures
        self.reads = 0

    async def fleet_health(self) -> dict[str, Any]:
        self.reads += 1
        if isinstance(self.figures, Exception):
            raise self.figures
        return dict(self.figures)


class NoFleetHealth(SeededConductor):
    """A fleet with no figures to show (its fleet_health answers empty)."""

    async def fleet_health(self) -> dict[str, Any]:
        return {}


def seeded(conductor: Any) -> Any:
    return make_app(conductor=conductor, operator=ME, now=frozen_now)


async def test_colours_follow_the_thresholds_and_reads_repeat_at_the_poll_interval() -> None:
    conductor = FiguresConductor({**FLEET_FIGURES, "outbox_lag_seconds": 12.5, "outbox_pending": 40,
                                  "dlq_depth": 0, "open_breakers": 2, "spawn_queue_depth": 0})
    app = seeded(conductor)
    app.health_poll_s = 0.1
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, app.engine_ready.is_set, what="engine ready")
        theme = app.current_theme
        assert shown(app)["outbox lag"] == "12.5 s (40 pending)"
        assert colour(app, "outbox lag") == theme.warning  # over 5 s
        assert shown(app)["breakers"] == "2 open" and colour(app, "breakers") == theme.error
        assert shown(app)["dead letters"] == "0" and colour(app, "dead letters") == ""
        assert colour(app, "monitor") == theme.success

        conductor.figures = {**FLEET_FIGURES, "outbox_lag_seconds": 75.0, "dlq_depth": 4}
        await until(pilot, lambda: shown(app)["dead letters"] == "4", what="the next read")
        assert colour(app, "outbox lag") == theme.error and colour(app, "dead letters") == theme.error
        reads = conductor.reads
        await pilot.pause(0.5)
        assert conductor.reads >= reads + 2  # polled, not read once


async def test_a_conductor_without_fleet_health_shows_the_monitor_only() -> None:
    app = seeded(NoFleetHealth())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, app.engine_ready.is_set, what="engine ready")
        rows = shown(app)
        assert rows["monitor"] == "running" and rows["cycles"] == "4211 (12.5 ms)"
        assert not {"outbox lag", "dead letters", "breakers", "spawn queue", "fleet figures"} & set(rows)


async def test_a_failing_read_is_shown_and_the_app_goes_on() -> None:
    conductor = FiguresConductor(ConnectionRefusedError("database away"))
    app = seeded(conductor)
    app.health_poll_s = 0.1
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, app.engine_ready.is_set, what="engine ready")
        assert shown(app)["fleet figures"] == "unavailable (ConnectionRefusedError)"
        assert "dead letters" not in shown(app)

        conductor.figures = dict(FLEET_FIGURES)  # the database is back
        await until(pilot, lambda: "dead letters" in shown(app), what="figures after recovery")
        assert "fleet figures" not in shown(app) and shown(app)["dead letters"] == "1"
        assert len(app.main.table.tasks) == 7  # the table was never disturbed


def test_a_degraded_check_shows_its_reason_and_where_the_log_is() -> None:
    from fleet_tui.ui.widgets.fleet_panels import health_rows

    rows = health_rows({"running": True, "cycles": 3, "degraded": ["runtime:tmux"],
                        "degraded_reasons": {"runtime:tmux": "OSError: tmux: no such file"},
                        "log": "/data/logs/control-room.log"})
    assert ("degraded", "runtime:tmux: OSError: tmux: no such file", "warn") in rows
    assert ("log", "/data/logs/control-room.log", "") in rows


async def test_the_logs_path_takes_one_line_its_middle_left_out() -> None:
    """A long path used to fold over four or five lines of the narrow panel; now one line:
    the file and its nearest directories, the middle left out."""
    long_path = "/tmp/pytest-of-root/pytest-226/test_a_task_run_by_another_hos0/room/data/logs/control-room.log"
    app = make_app(conductor=SeededConductor(), operator=ME, now=frozen_now, log_path=Path(long_path))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, app.engine_ready.is_set, what="engine ready")
        panel = app.main.query_one(HealthPanel)

        def lines() -> list[str]:
            return [strip.text.rstrip() for strip in panel.render_lines(panel.region.reset_offset)]
        # laid out at its new height after the next refresh (on 3.14 later than on 3.11)
        await until(pilot, lambda: any("logs" in line for line in lines()), what="the log line")
        shown = [line for line in lines() if "control-room" in line]
        assert len(shown) == 1 and shown[0].strip().startswith("…/") and shown[0].endswith("/logs/control-room.log")
        assert len(shown[0].strip()) <= panel.content_size.width
        assert not any("pytest-of" in line for line in lines())


def test_short_path_keeps_the_file_and_says_home() -> None:
    from fleet_tui.ui.format import short_path

    assert short_path("/home/ann/.local/share/fleet-tui/logs/control-room.log", 30, home="/home/ann") \
        == "~/…/logs/control-room.log"
    assert short_path("/home/ann/logs/a.log", 30, home="/home/ann") == "~/logs/a.log"
    assert short_path("/srv/x/logs/control-room.log", 40) == "/srv/x/logs/control-room.log"
    assert short_path("/a/b/control-room.log", 10) == "…-room.log"  # not even the name fits: its end
