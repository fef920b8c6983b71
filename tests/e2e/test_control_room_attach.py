"""Attach as a user meets it: the control room runs inside tmux (the harness's pane sets
TMUX) whose session has no client attached, so tmux cannot open a popup there. Attach must
fall back to suspending the UI and attaching in its own terminal, say how to come back, and
return on detach; tmux's error is never painted over the table. A Docker task's attach is a
shell in its container, left with `exit`, and the terminal says so."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.e2e.terminal import ControlRoom, status_on_screen
from tests.e2e.test_docker_conductor import AGENT_UID, MOUNTS
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


@pytest.mark.docker
async def test_attach_to_a_container_says_exit_returns_and_comes_back(fresh_database: Any, git_repo: Path,
                                                                       tmp_path: Path) -> None:
    """A docker task: attach opens a shell in its container (docker exec, no detach keys):
    the terminal says, above the shell's prompt, that `exit` comes back; it does."""
    subprocess.run(["chown", "-R", f"{AGENT_UID}:{AGENT_UID}", str(git_repo)], check=True)  # a user's repo
    room = ControlRoom(tmp_path / "room", await fresh_database(), git_repo, extra_env={
        "FLEET_RUNTIME__DOCKER_IMAGE": "fleet-agent-test:latest", "FLEET_RUNTIME__DOCKER_USER": "auto",
        "FLEET_RUNTIME__DOCKER_MOUNTS": json.dumps(MOUNTS), "FLEET_RUNTIME__DOCKER_MEMORY": "512m"})
    task_id = ""
    try:
        await room.start()
        done = await room.cli("spawn", "attach to my container\nFLEET-DEMO: sleep 120", "--agent", "demo",
                              "--runtime", "docker", "--repo", str(room.repo), "--json")
        assert done.returncode == 0, done.stderr
        task_id = json.loads(done.stdout)["task"]["id"]
        await room.term.wait_for(lambda s: status_on_screen(s, task_id) == "running", 60, what="running")
        room.term.keys("a")
        shell = await room.term.wait_text("to return to fleet-tui", 20)
        assert f"fleet-tui: attached to {task_id}, a shell in the agent's container: type exit" in shell
        await room.term.wait_for(lambda s: s.rstrip().endswith("$"), 20, what="the shell's prompt")
        room.term.type("exit")
        room.term.keys("Enter")
        back = await room.term.wait_text(f"detached from {task_id}", 20)
        assert status_on_screen(back, task_id) == "running"
        room.assert_no_traceback()
    finally:
        room.close()
        if task_id:
            for container in docker.from_env().containers.list(all=True, filters={"label": f"fleet-task-id={task_id}"}):
                container.remove(force=True)
