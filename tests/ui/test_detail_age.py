"""The detail header's age keeps counting while nothing about the task changes."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, UTC
from pathlib import Path
from typing import Any

from rich.console import Console
from textual.widgets import Static

from fleet_tui.domain.models import SpawnRequest
from fleet_tui.ui.app import make_app
from fleet_tui.ui.screens.detail import DetailScreen
from tests.fixtures.engine import operator
from tests.ui.helpers import until


async def test_age_ticks_in_the_detail_header(make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor()
    op = operator()
    await conductor.spawn(op, SpawnRequest(description="quiet\nFLEET-DEMO: sleep 60", repo=str(git_repo)))
    later = timedelta()

    def now() -> datetime:
        return datetime.now(UTC) + later

    app = make_app(conductor=conductor, operator=op, now=now)
    async with app.run_test(size=(150, 40)) as pilot:
        await until(pilot, app.engine_ready.is_set, what="engine ready")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen), what="detail screen")

        def header() -> str:
            console = Console(width=150, record=True, file=io.StringIO())
            console.print(app.screen.query_one("#meta", Static).content)
            return console.export_text()

        later = timedelta(minutes=7)  # the clock moves on; the task does not change
        await until(pilot, lambda: "7m" in header(), timeout_s=8, what="age 7m in the header")
