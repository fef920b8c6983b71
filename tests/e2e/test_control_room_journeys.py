"""User journeys: the installed `fleet-tui` in a real tmux terminal, with the control room as
the only conductor, driven by keys and read from the screen (tests/e2e/terminal.py). Every
task chooses the demo agent explicitly, whatever agent CLIs the host has."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any
from collections.abc import AsyncIterator

import pytest_asyncio

from fleet_tui.ui.screens.spawn import LABELS
from tests.e2e.terminal import ControlRoom, row_of, status_on_screen


@pytest_asyncio.fixture
async def room(fresh_database: Any, git_repo: Path, tmp_path: Path) -> AsyncIterator[ControlRoom]:
    made = ControlRoom(tmp_path / "room", await fresh_database(), git_repo)
    try:
        yield made
    finally:
        made.close()


async def spawn_from_cli(room: ControlRoom, description: str) -> str:
    done = await room.cli("spawn", description, "--agent", "demo", "--repo", str(room.repo), "--json")
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["task"]["id"])


async def until(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def test_spawn_through_the_form_reaches_ready_with_the_control_room_as_the_only_conductor(
        room: ControlRoom) -> None:
    await room.start()
    room.term.keys("n")
    await room.term.wait_text("New task")
    await room.term.type_seen("add a greeting")
    room.term.keys("Enter")  # the description takes several lines: the demo agent's script below
    await room.term.type_seen("FLEET-DEMO: write greeting.txt hello")
    await room.term.focus(LABELS["agent"], list(LABELS.values()))
    form = await room.term.type_seen("demo")
    assert "hellodemo" not in form
    room.term.keys("C-s")

    async def one_task() -> bool:
        return len(await room.task_ids()) == 1
    await until(one_task, 30, "the spawned task")
    [task_id] = await room.task_ids()
    agent = await room.query("SELECT agent, description FROM fleet_tasks WHERE id = $1", task_id)
    assert agent[0]["agent"] == "demo"
    assert agent[0]["description"] == "add a greeting\nFLEET-DEMO: write greeting.txt hello"  # as typed
    await room.term.wait_for(lambda s: status_on_screen(s, task_id) == "ready", 120, what="ready on screen")
    assert await room.status(task_id) == "ready"
    written = subprocess.run(["git", "-C", str(room.repo), "show", f"fleet/{task_id}:greeting.txt"],
                             capture_output=True, text=True)
    assert written.stdout.strip() == "hello", written.stderr  # the script line reached the agent
    conductors = await room.query("SELECT count(*) AS n FROM fleet_conductors")
    assert conductors[0]["n"] == 1  # the control room moved it all the way
    log = room.root / "data" / "logs" / "control-room.log"
    assert log.is_file()  # the UI writes its log there, and the health panel says so
    assert "control-room" in "".join(line.rsplit("▏", 1)[-1].strip() for line in room.term.screen().splitlines())
    room.assert_no_traceback()


async def test_a_spawn_from_another_process_and_its_later_states_appear_live(room: ControlRoom) -> None:
    await room.start()
    task_id = await spawn_from_cli(room, "from another process\nFLEET-DEMO: sleep 4")
    returned = time.monotonic()
    await room.term.wait_for(lambda s: row_of(s, task_id) is not None, 2.0, what="the new row within 2 s")
    assert time.monotonic() - returned <= 2.0

    # each status the database takes reaches the screen within 2 s, up to ready
    shown_at: dict[str, float] = {}
    stored_at: dict[str, float] = {}
    deadline = time.monotonic() + 120
    while "ready" not in shown_at:
        assert time.monotonic() < deadline, f"never ready on screen; stored {stored_at}, shown {shown_at}"
        stored_at.setdefault(await room.status(task_id), time.monotonic())
        shown = status_on_screen(room.term.screen(), task_id)
        if shown:
            shown_at.setdefault(shown, time.monotonic())
        await asyncio.sleep(0.1)
    assert "running" in shown_at
    assert shown_at["ready"] - stored_at["ready"] <= 2.0

    # a change made elsewhere (another process stops a second task) shows too
    other = await spawn_from_cli(room, "stopped from a shell\nFLEET-DEMO: sleep 60")
    try:
        await room.term.wait_for(lambda s: status_on_screen(s, other) == "running", 10, what="second task running")
    except AssertionError:
        print(await room.story(other))
        raise
    done = await room.cli("stop", other)
    assert done.returncode == 0, done.stderr
    stopped = time.monotonic()
    await room.term.wait_for(lambda s: status_on_screen(s, other) == "cancelled", 2.0, what="cancelled within 2 s")
    assert time.monotonic() - stopped <= 2.0
    room.assert_no_traceback()


async def test_s_asks_then_kills_the_agent(room: ControlRoom) -> None:
    await room.start()
    task_id = await spawn_from_cli(room, "long job\nFLEET-DEMO: sleep 120")
    await room.term.wait_for(lambda s: status_on_screen(s, task_id) == "running", 10, what="running on screen")
    assert room.agent_session_alive(task_id)
    room.term.keys("s")
    await room.term.wait_text("Stop task", timeout_s=5)
    assert room.agent_session_alive(task_id)  # asked first: nothing killed yet
    room.term.keys("y")
    await room.term.wait_for(lambda s: status_on_screen(s, task_id) == "cancelled", 10, what="cancelled on screen")

    async def session_gone() -> bool:
        return f"fleet-{task_id}" not in room.agent_sessions()
    await until(session_gone, 10, "the agent's tmux session to go")
    assert await room.status(task_id) == "cancelled"
    room.assert_no_traceback()


async def test_the_log_tab_shows_the_agents_lines_while_it_runs(room: ControlRoom) -> None:
    await room.start()
    task_id = await spawn_from_cli(room, "talkative\nFLEET-DEMO: flood 30\nFLEET-DEMO: sleep 120")
    await room.term.wait_for(lambda s: status_on_screen(s, task_id) == "running", 10, what="running on screen")
    room.term.keys("Enter")
    screen = await room.term.wait_text("[demo] flood line 29", timeout_s=10)
    assert "[demo] model" in screen
    assert room.agent_session_alive(task_id)  # shown while the agent runs
    assert "no output recorded" not in screen
    room.assert_no_traceback()


# Under load this once "ended 129 (SIGHUP)": the harness read tmux's "pane dead, status not
# reaped yet" as signal 1; the app had exited 0 (tests/e2e/test_terminal_harness.py).
async def test_quitting_with_stop_agents_stops_them(room: ControlRoom) -> None:
    """Stops the agents, and only them: a change that is ready has no agent, and quitting
    must not cancel it (it counted as 'live' and x cancelled it)."""
    await room.start()
    finished = await spawn_from_cli(room, "finished work")
    await room.term.wait_for(lambda s: status_on_screen(s, finished) == "ready", 30, what="ready on screen")
    task_id = await spawn_from_cli(room, "outlives nothing\nFLEET-DEMO: sleep 120")
    await room.term.wait_for(lambda s: status_on_screen(s, task_id) == "running", 10, what="running on screen")
    code = await room.quit("x")
    assert "1 of your agents is running" in "\n".join(room.term.seen), room.term.seen[-1]
    assert "Stop agents and quit (x)" in "\n".join(room.term.seen)
    assert code == 0, room.term.history()
    assert await room.status(task_id) == "cancelled"
    assert f"fleet-{task_id}" not in room.agent_sessions()
    assert await room.status(finished) == "ready", await room.story(finished)
    room.assert_no_traceback()


def header_of(screen: str) -> str:
    return next((line for line in screen.splitlines() if line.strip().startswith("ID ")), "")


def column_starts(header: str) -> dict[str, int]:
    found = {label: re.search(rf"(?<= ){re.escape(label)}(?= |$)", header)
             for label in ("ID", "STATUS", "AGENT/MODEL", "CI", "REVIEW", "DESCRIPTION")}
    return {label: match.start() for label, match in found.items() if match is not None}


async def test_columns_line_up_and_fit_at_80_120_and_160_columns(room: ControlRoom) -> None:
    await room.start()
    ids = [await spawn_from_cli(room, "a description long enough to be cut at every width of the table"
                                       "\nFLEET-DEMO: sleep 120"),
           await spawn_from_cli(room, "short")]
    await room.term.wait_for(lambda s: status_on_screen(s, ids[1]) == "ready", 60, what="ready")
    for width, panel, last in ((160, True, "OPERATOR"), (120, True, "DESCRIPTION"), (80, False, "DESCRIPTION")):
        room.term.resize(width, 40)
        screen = await room.term.wait_for(
            lambda s, panel=panel, last=last: ("Governor headroom" in s) == panel and all(row_of(s, i) for i in ids)
            and re.search(rf" {last}( |$)", header_of(s), re.M) is not None, 10, what=f"the table at {width} columns")
        lines = screen.splitlines()
        header = header_of(screen)
        assert max(len(line.rstrip()) for line in lines) <= width
        starts = column_starts(header)
        assert {"ID", "STATUS", "AGENT/MODEL", "DESCRIPTION"} <= set(starts)
        for task_id in ids:
            row = row_of(screen, task_id) or ""
            # every cell starts under its header, after a space: nothing runs into the next column
            for label, at in starts.items():
                assert row[at - 1] == " " and row[at] != " ", (width, label, header, row)
            assert row[starts["DESCRIPTION"]:].startswith(("a descr", "short")), (width, row)
        # the cut description ends in "…" and the whole status shows
        assert "…" in (row_of(screen, ids[0]) or "")
        assert status_on_screen(screen, ids[1]) == "ready"
    room.assert_no_traceback()


async def test_quitting_with_no_agent_running_offers_no_choice_about_agents(room: ControlRoom) -> None:
    """Nothing to keep or stop: the dialog offers Quit and Cancel, and x does nothing."""
    await room.start()
    room.term.keys("q")
    screen = await room.term.wait_text("Quit the control room?", timeout_s=10)
    assert "None of your agents is running." in screen
    assert "Quit (enter)" in screen and "Cancel (esc)" in screen
    assert "Stop agents" not in screen and "keep running" not in screen
    room.term.keys("x")
    await asyncio.sleep(1.0)
    assert room.term.exited() is None and "Quit the control room?" in room.term.screen()
    assert await room.quit("Enter") == 0  # q again is ignored on the dialog; Enter quits
