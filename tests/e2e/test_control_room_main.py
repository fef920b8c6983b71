"""The main screen as a user runs it: the installed `fleet-tui` in a real tmux terminal
(tests/e2e/terminal.py), read from the screen. The preview pane, the "needs input" marker,
the first-run hint, keys that say why they do not apply, the palette's keys, help's way out,
the counts, and the demo agent's commit subject. Every task chooses the demo agent."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import uuid
from pathlib import Path

from fleet_tui.ui.screens.spawn import LABELS
from tests.fixtures.engine import kill_tmux_server
from tests.e2e.terminal import FLEET_TUI, ControlRoom, ScreenTimeout, row_of, status_on_screen
from tests.e2e.test_control_room_journeys import room, spawn_from_cli  # noqa: F401 (the room fixture)


FORM = list(LABELS.values())  # the spawn form's fields, by the labels above them


def preview_title(screen: str) -> str:
    return next((line for line in screen.splitlines() if "output of " in line), "")


async def test_the_preview_pane_shows_the_selected_agents_output_and_follows_the_cursor(room: ControlRoom) -> None:
    await room.start()
    first = await spawn_from_cli(room, "first talker\nFLEET-DEMO: flood 5\nFLEET-DEMO: sleep 120")
    second = await spawn_from_cli(room, "second talker\nFLEET-DEMO: write notes.md hello\nFLEET-DEMO: sleep 120")
    screen = await room.term.wait_for(lambda s: status_on_screen(s, first) == "running"
                                      and status_on_screen(s, second) == "running", 30, what="both running")
    assert "p Preview" in screen  # the key is in the footer
    assert "output of" not in screen  # closed until asked for
    lines = screen.splitlines()
    upper = first if lines.index(row_of(screen, first) or "") < lines.index(row_of(screen, second) or "") else second

    room.term.keys("p")
    screen = await room.term.wait_for(lambda s: first in preview_title(s) or second in preview_title(s), 10,
                                      what="the preview of the selected task")
    shown = first if first in preview_title(screen) else second
    other = second if shown == first else first
    expected = {first: "[demo] flood line 4", second: "[demo] write notes.md"}
    screen = await room.term.wait_text(expected[shown], timeout_s=10)
    assert "[demo] model" in screen
    assert row_of(screen, first) and row_of(screen, second)  # the table stays above it

    room.term.keys("Down" if shown == upper else "Up")  # the preview follows the cursor
    screen = await room.term.wait_for(lambda s: other in preview_title(s) and expected[other] in s, 10,
                                      what="the preview of the other task")
    assert expected[shown] not in screen

    room.term.keys("Enter")  # the detail screen takes the stream; back, the preview reads again
    await room.term.wait_text("Verdicts", timeout_s=10)
    room.term.keys("Escape")
    await room.term.wait_for(lambda s: other in preview_title(s) and expected[other] in s, 10,
                             what="the preview again after the detail screen")

    room.term.keys("p")
    await room.term.wait_for(lambda s: "output of" not in s, 5, what="the preview closed")
    room.assert_no_traceback()


async def test_a_waiting_agent_is_marked_needs_input_in_words(room: ControlRoom) -> None:
    await room.start()
    task_id = await spawn_from_cli(room, "asks before it goes on\nFLEET-DEMO: wait-input")
    screen = await room.term.wait_for(lambda s: "needs input" in (row_of(s, task_id) or ""), 90,
                                      what="the needs-input marker")
    rows = await room.query("SELECT status, needs_input FROM fleet_tasks WHERE id = $1", task_id)
    assert (rows[0]["status"], rows[0]["needs_input"]) == ("running", True)
    room.term.keys("/")  # the words filter on it too
    await room.term.wait_text("filter: words", timeout_s=5)  # the box has the keys now
    room.term.type("input")
    screen = await room.term.wait_text("filter: input", timeout_s=5)
    assert row_of(screen, task_id)
    room.assert_no_traceback()
    assert "needs input" in screen


async def test_first_run_says_what_n_does_and_on_which_repository(room: ControlRoom) -> None:
    screen = await room.start()
    assert "No tasks yet. Press n to start a task" in screen
    assert str(room.repo) in " ".join(screen.split())  # the repository the form will propose
    task_id = await spawn_from_cli(room, "the first task")
    await room.term.wait_for(lambda s: row_of(s, task_id) is not None and "No tasks yet" not in s, 10,
                             what="the hint gone once a task is there")
    room.assert_no_traceback()


async def test_first_run_outside_a_repository_names_the_demo_repository(room: ControlRoom, tmp_path: Path) -> None:
    elsewhere = tmp_path / "not-a-repo"
    elsewhere.mkdir()
    room.repo = elsewhere
    screen = await room.start()
    flat = " ".join(screen.split())
    assert "is not a git repository: new tasks default to the demo repository" in flat
    assert "No tasks yet. Press n to start a task: its repository defaults to" in flat
    assert "demo-repo" in flat
    room.assert_no_traceback()


async def test_keys_that_do_not_apply_say_why_and_the_palette_and_help_name_their_keys(room: ControlRoom) -> None:
    await room.start()
    task_id = await spawn_from_cli(room, "stopped early\nFLEET-DEMO: sleep 120")
    await room.term.wait_for(lambda s: status_on_screen(s, task_id) == "running", 30, what="running")
    room.term.keys("m")  # merge on a running task
    await room.term.wait_text("only a ready task", timeout_s=5)  # (the notice wraps)
    done = await room.cli("stop", task_id)
    assert done.returncode == 0, done.stderr
    await room.term.wait_for(lambda s: status_on_screen(s, task_id) == "cancelled", 10, what="cancelled")
    room.term.keys("s")
    screen = await room.term.wait_text("nothing to stop", timeout_s=5)
    assert "Stop task" not in screen  # no dialog for a verb that cannot run

    room.term.keys(":")
    for word, key in (("attach", "a"), ("logs", "l"), ("diff", "d"), ("refresh", "ctrl+r")):
        await room.term.type_seen(word)
        await room.term.wait_text(f"(key {key})", timeout_s=5)
        room.term.keys(*["BSpace"] * len(word))
        await asyncio.sleep(0.5)
    room.term.keys("Escape")
    await room.term.wait_for(lambda s: "Search for commands" not in s, 5, what="the palette closed")
    room.term.keys("?")
    await room.term.wait_text("Close this help with esc or ? or q", timeout_s=5)
    room.term.keys("q")
    await room.term.wait_for(lambda s: "Close this help" not in s and "tasks shown" in s, 5, what="help closed")
    room.assert_no_traceback()


async def test_counts_agent_column_and_the_demo_commit_subject(room: ControlRoom) -> None:
    await room.start()
    task_id = await spawn_from_cli(room, "add a greeting to the readme\nsecond line of the description")
    screen = await room.term.wait_for(lambda s: status_on_screen(s, task_id) == "ready", 120, what="ready")
    # a ready task holds a slot but runs no agent: the status line tells them apart
    assert "0 agents running" in screen and "fleet 1/" in screen
    # at 160 columns the agent column shows the whole agent/model
    assert "demo/demo-small" in (row_of(screen, task_id) or ""), screen
    # the demo agent's commit is titled with the description's first line, not the prompt's heading
    branch = (await room.query("SELECT branch FROM fleet_tasks WHERE id = $1", task_id))[0]["branch"]
    subject = subprocess.run(["git", "log", "-1", "--format=%s", branch], cwd=room.repo, capture_output=True,
                             text=True, check=True).stdout.strip()
    assert subject == "demo: add a greeting to the readme"
    room.assert_no_traceback()


async def test_the_embedded_database_start_is_shown_in_words_under_an_information_banner(
        room: ControlRoom, tmp_path: Path) -> None:
    """No database configured: the app's first frame says it starts PostgreSQL (initdb,
    migrations) while it does, then the table; the banner says where, as information."""
    home = tmp_path / "home"
    env = {k: v for k, v in room.env().items() if k != "FLEET_DATABASE__URL"}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"), XDG_CONFIG_HOME=str(home / "config"))
    room.term.start([str(FLEET_TUI)], cwd=room.repo, env=env)
    await room.term.wait_text("starting PostgreSQL and applying migrations", timeout_s=60)
    screen = await room.term.wait_text("tasks shown", timeout_s=120)
    assert "database: embedded PostgreSQL under" in " ".join(screen.split())
    assert "No tasks yet. Press n" in screen
    room.assert_no_traceback()
    assert await room.quit("Enter") == 0  # keep agents (there are none); the database stops with it


async def test_the_spawn_form_shows_every_fields_error_at_once(room: ControlRoom) -> None:
    """A base branch the repository lacks, an unknown agent (both found by the engine) and a
    priority out of range (the form's rule): one ctrl+s shows all three, nothing is made."""
    await room.start()
    room.term.keys("n")
    await room.term.wait_text("New task")
    await room.term.type_seen("checked all at once")
    await room.term.focus(LABELS["base_branch"], FORM)  # past the repository (the default)
    await room.term.type_seen("no-such-branch")
    await room.term.focus(LABELS["agent"], FORM)
    await room.term.type_seen("nosuchagent")
    await room.term.focus(LABELS["priority"], FORM)
    for _ in range(5):  # the default 50 away (sent again if lost); an empty field shows its label
        room.term.keys("End", "C-u")
        with contextlib.suppress(ScreenTimeout):
            await room.term.wait_for(lambda s: s.count(LABELS["priority"]) == 2, 3, what="the priority cleared")
            break
    await room.term.type_seen("500")
    room.term.keys("C-s")
    screen = await room.term.wait_text("not submitted", timeout_s=30)
    flat = " ".join(screen.split())
    assert "base_branch: no branch no-such-branch" in flat
    assert "agent: unknown agent profile 'nosuchagent'" in flat
    assert "priority: Input should be less than or equal to 100" in flat
    assert await room.task_ids() == []
    room.assert_no_traceback()


async def test_a_task_run_by_another_hosts_conductor_says_where_its_output_is(room: ControlRoom,
                                                                               tmp_path: Path) -> None:
    """The agent runs under a conductor on another host (its own data directory and tmux
    server; the host name set in the fleet's table): the preview says where its output is
    instead of an empty pane."""
    other_socket = f"fleet-agents-other-{uuid.uuid4().hex[:8]}"
    elsewhere = {**room.env(), "FLEET_DATA_DIR": str(tmp_path / "other-host"),
                 "FLEET_RUNTIME__TMUX_SOCKET": other_socket}
    try:
        done = await asyncio.to_thread(
            subprocess.run, [str(FLEET_TUI), "spawn", "runs on another host\nFLEET-DEMO: sleep 300", "--agent",
                             "demo", "--repo", str(room.repo), "--json"],
            cwd=room.repo, env=elsewhere, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        task_id = json.loads(done.stdout)["task"]["id"]
        await room.query("INSERT INTO fleet_conductors (id, host, pid, heartbeat_at) VALUES"
                         " ('elsewhere-1', 'build-7.example', 4242, now() + interval '1 hour')")
        await room.query("INSERT INTO fleet_leases (task_id, owner, expires_at) VALUES"
                         " ($1, 'elsewhere-1', now() + interval '1 hour') ON CONFLICT (task_id) DO UPDATE"
                         " SET owner = excluded.owner, expires_at = excluded.expires_at", task_id)
        await room.start()
        await room.term.wait_for(lambda s: status_on_screen(s, task_id) == "running", 30, what="the row")
        room.term.keys("p")
        screen = await room.term.wait_for(lambda s: "build-7.example" in s, 15, what="the other host named")
        flat = " ".join(line.split("▏")[0].strip() for line in screen.splitlines())
        assert "no output on this host: the agent runs under the conductor on build-7.example" in flat, screen
        assert f"read it there with: fleet-tui logs {task_id})" in flat, screen  # whole, not cut at the edge
        assert await room.status(task_id) == "running"  # this room left it to its conductor
        room.assert_no_traceback()
    finally:
        kill_tmux_server(other_socket)
