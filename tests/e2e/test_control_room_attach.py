"""Attach as a user meets it: the control room runs inside tmux (the harness's pane sets
TMUX) whose session has no client attached, so tmux cannot open a popup there. Attach must
fall back to suspending the UI and attaching in its own terminal, say how to come back, and
return on detach; tmux's error is never painted over the table."""

from __future__ import annotations

from tests.e2e.terminal import ControlRoom, status_on_screen
from tests.e2e.test_control_room_journeys import room, spawn_from_cli  # noqa: F401 (fixture)


async def test_attach_without_a_popup_suspends_says_how_to_return_and_comes_back(room: ControlRoom) -> None:
    await room.start()
    task_id = await spawn_from_cli(room, "attach to me\nFLEET-DEMO: sleep 60")
    await room.term.wait_for(lambda s: status_on_screen(s, task_id) == "running", 60, what="running")
    room.term.keys("a")
    on_agent = await room.term.wait_for(lambda s: "Ctrl-b d" in s or "no current client" in s, 20,
                                        what="the agent's terminal")
    assert "no current client" not in on_agent, on_agent
    assert "[demo] committed" in on_agent or "[demo] model" in on_agent  # the agent's own terminal
    room.term.keys("C-b", "d")
    back = await room.term.wait_text(f"detached from {task_id}", 20)
    assert status_on_screen(back, task_id) == "running"
    assert not any("no current client" in screen for screen in room.term.seen)
    room.assert_no_traceback()
