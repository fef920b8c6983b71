"""The detail screen as a user drives it: the installed `fleet-tui` in a real tmux terminal
(tests/e2e/terminal.py), the control room the only conductor. Stop, retry, merge, diff and
attach are where the operator is; their keys are in the footer; a key that does not apply
says why in one line."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any
from collections.abc import AsyncIterator

import pytest_asyncio

from tests.e2e.terminal import ControlRoom, status_on_screen
from tests.e2e.test_control_room_journeys import spawn_from_cli, until


@pytest_asyncio.fixture
async def room(fresh_database: Any, git_repo: Path, tmp_path: Path) -> AsyncIterator[ControlRoom]:
    # a failed task waits for the operator's retry
    made = ControlRoom(tmp_path / "room", await fresh_database(), git_repo,
                       extra_env={"FLEET_RETRY__AUTO": "false"})
    try:
        yield made
    finally:
        made.close()


def detail_status(screen: str) -> str | None:
    """The status in the detail screen's header ("status  <status>")."""
    found = re.search(r"\bstatus\s+(?:\S\s)?\s*([a-z_]+)", screen)
    return found.group(1) if found else None


def footer(screen: str) -> str:
    lines = screen.rstrip().splitlines()
    return lines[-1] if lines else ""


def flat(screen: str) -> str:
    """The screen's words in one line: a notice wraps inside its toast (its border ▌ dropped)."""
    return " ".join(screen.replace("▌", " ").split())


async def open_detail(room: ControlRoom, task_id: str, status: str) -> str:
    await room.term.wait_for(lambda s: status_on_screen(s, task_id) == status, 120, what=f"{status} on screen")
    room.term.keys("Enter")
    return await room.term.wait_for(lambda s: detail_status(s) == status and task_id in s, 10, what="the detail screen")


async def test_stop_from_the_detail_screen_asks_kills_the_agent_and_says_why_other_keys_do_not_apply(
        room: ControlRoom) -> None:
    await room.start()
    task_id = await spawn_from_cli(room, "long job\nFLEET-DEMO: sleep 120")
    await open_detail(room, task_id, "running")
    keys = ("s Stop", "r Retry", "m Merge", "a Attach", "d Diff")
    await room.term.wait_for(lambda s: all(key in footer(s) for key in keys), 5, what=f"{keys} in the footer")
    room.term.keys("s")
    await room.term.wait_text("Stop task", timeout_s=5)
    assert room.agent_session_alive(task_id)  # asked first: nothing killed yet
    room.term.keys("y")
    await room.term.wait_for(lambda s: detail_status(s) == "cancelled", 10, what="cancelled in the detail header")

    async def session_gone() -> bool:
        return f"fleet-{task_id}" not in room.agent_sessions()
    await until(session_gone, 10, "the agent's tmux session to go")
    assert await room.status(task_id) == "cancelled"

    for key, why in (("r", "only a failed or rejected task can be retried"),
                     ("m", "only a ready task can be merged"),
                     ("s", "there is nothing to stop"),
                     ("a", "no agent is running to attach to")):
        room.term.keys(key)
        screen = await room.term.wait_for(lambda s, why=why: why in flat(s), 5, what=f"why {key} does not apply")
        assert detail_status(screen) == "cancelled"  # still on the detail screen, nothing else happened
    assert await room.status(task_id) == "cancelled"
    room.assert_no_traceback()


async def test_retry_diff_and_merge_from_the_detail_screen(room: ControlRoom) -> None:
    await room.start()
    task_id = await spawn_from_cli(room, "flaky\nFLEET-DEMO: fail-until-attempt 2")
    await open_detail(room, task_id, "failed")
    room.term.keys("r")  # no question: retrying loses nothing
    try:
        await room.term.wait_for(lambda s: detail_status(s) == "ready", 120, what="ready in the detail header")
    except AssertionError:
        print(await room.story(task_id))
        raise
    rows = await room.query("SELECT retry_count FROM fleet_tasks WHERE id = $1", task_id)
    assert rows[0]["retry_count"] == 1
    room.term.keys("d")
    await room.term.wait_text("FLEET_DEMO.md", timeout_s=10)  # the demo agent's change, on the diff tab
    room.term.keys("m")
    await room.term.wait_text(f"Merge task {task_id}", timeout_s=5)
    assert await room.status(task_id) == "ready"  # asked first
    room.term.keys("y")
    await room.term.wait_for(lambda s: detail_status(s) == "merged", 30, what="merged in the detail header")
    assert await room.status(task_id) == "merged"
    merged = subprocess.run(["git", "-C", str(room.repo), "log", "--format=%s", "main"], capture_output=True,
                            text=True, check=True).stdout
    assert f"fleet/{task_id}" in merged, merged  # the task's branch is in main
    room.assert_no_traceback()
