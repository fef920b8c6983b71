"""Shared by the pilot tests: wait for a condition while the app keeps running."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from collections.abc import Callable

from textual.pilot import Pilot


async def until(pilot: Pilot, condition: Callable[[], object], timeout_s: float = 20.0,
                what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


async def settle(pilot: Pilot) -> None:
    await pilot.pause(0.1)
    await asyncio.sleep(0)


def footer_actions(app: object) -> set[str]:
    """The actions the footer shows right now (hidden verbs are absent)."""
    from textual.widgets._footer import FooterKey

    return {key.action for key in app.screen.query(FooterKey) if key.display}  # type: ignore[attr-defined]


async def open_spawn_form(pilot: Pilot) -> Any:
    """Once the engine is ready, `n`: the spawn form, on screen."""
    from fleet_tui.ui.screens.spawn import SpawnScreen

    app: Any = pilot.app
    await until(pilot, app.engine_ready.is_set, what="engine ready")
    await pilot.press("n")
    await until(pilot, lambda: isinstance(app.screen, SpawnScreen), what="spawn form")
    return app.screen
