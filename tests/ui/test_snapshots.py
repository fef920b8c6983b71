"""One snapshot per screen, from seeded records and a frozen clock (tests/ui/seeded.py)."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from fleet_tui.ui.screens.detail import DetailScreen
from tests.ui.seeded import seeded_app

SIZE = (150, 40)


async def ready(pilot: Pilot) -> None:
    app: Any = pilot.app
    while not app.engine_ready.is_set():
        await pilot.pause(0.02)
    await pilot.pause(0.1)


def then(*keys: str, wait_log: bool = False, wait_text: tuple[str, str] | None = None) -> Any:
    """wait_text: (selector, text) the screen shows before the shot (a worker's verdict comes
    later than a fixed pause on a loaded machine)."""
    async def run_before(pilot: Pilot) -> None:
        await ready(pilot)
        await pilot.press(*keys)
        await pilot.pause(0.2)
        if wait_text is not None:
            selector, text = wait_text
            for _ in range(500):
                if text in str(pilot.app.screen.query_one(selector).render()):
                    break
                await pilot.pause(0.02)
        if wait_log:
            screen: Any = pilot.app.screen
            assert isinstance(screen, DetailScreen)
            while screen.query_one("#log").line_count < 9:
                await pilot.pause(0.02)
        await pilot.pause(0.1)
    return run_before


def test_main_screen(snap_compare: Any) -> None:
    assert snap_compare(seeded_app(), terminal_size=SIZE, run_before=then())


def test_main_screen_light_theme(snap_compare: Any) -> None:
    assert snap_compare(seeded_app(theme="textual-light"), terminal_size=SIZE, run_before=then())


def test_main_screen_filtered_and_sorted(snap_compare: Any) -> None:
    assert snap_compare(seeded_app(), terminal_size=SIZE,
                        run_before=then("o", "slash", *"ana", "enter"))


def test_detail_log(snap_compare: Any) -> None:
    assert snap_compare(seeded_app(), terminal_size=SIZE, run_before=then("enter", wait_log=True))


def test_detail_diff(snap_compare: Any) -> None:
    assert snap_compare(seeded_app(), terminal_size=SIZE, run_before=then("enter", "d"))


def test_detail_verdicts(snap_compare: Any) -> None:
    assert snap_compare(seeded_app(), terminal_size=SIZE, run_before=then("down", "enter", "v"))


def test_detail_audit(snap_compare: Any) -> None:
    assert snap_compare(seeded_app(), terminal_size=SIZE, run_before=then("enter", "t"))


def test_spawn_form_with_validation_errors(snap_compare: Any) -> None:
    assert snap_compare(seeded_app(), terminal_size=SIZE,
                        run_before=then("n", "tab", "tab", "tab", "tab", "tab", "tab", "backspace", "backspace",
                                        "9", "9", "9", "ctrl+s", wait_text=("#admission", "not submitted")))


def test_help(snap_compare: Any) -> None:
    assert snap_compare(seeded_app(), terminal_size=SIZE, run_before=then("question_mark"))


def test_delete_confirmation(snap_compare: Any) -> None:
    assert snap_compare(seeded_app(), terminal_size=SIZE, run_before=then("end", "ctrl+d"))


def test_quit_dialog(snap_compare: Any) -> None:
    assert snap_compare(seeded_app(), terminal_size=SIZE, run_before=then("q"))
