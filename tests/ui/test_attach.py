"""Attach, for real: the control room runs in a pane of an outer tmux server (a real
terminal for Textual's Linux driver), `a` suspends it and runs `tmux attach` on the
fleet's socket, the test detaches that client. The engine's monitor must keep cycling
while attached (the asyncio subprocess keeps the loop running), and the UI must come back."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from fleet_tui.domain.models import SpawnRequest
from fleet_tui.ui.app import make_app
from tests.fixtures.engine import kill_tmux_server, operator
from tests.ui.helpers import until

CYCLES = re.compile(r"cycles\s+(\d+)")
INTERVAL_S = 0.2


def tmux(socket: str, *args: str) -> str:
    return subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True).stdout


async def screen_until(socket: str, predicate: Any, timeout_s: float = 30.0, what: str = "") -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        text = tmux(socket, "capture-pane", "-p", "-t", "ui")
        if predicate(text):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; screen:\n{text}")
        await asyncio.sleep(0.1)


async def test_attach_keeps_the_engine_running_and_returns_to_the_ui(
        make_conductor: Any, git_repo: Path, tmp_path: Path) -> None:
    conductor = await make_conductor()
    settings = conductor.settings
    task = (await conductor.spawn(operator(), SpawnRequest(description="attach to me\nFLEET-DEMO: sleep 60",
                                                           repo=str(git_repo)))).task
    fleet_socket = settings.runtime.tmux_socket
    env = {
        "FLEET_DATABASE__URL": settings.database_url, "FLEET_DATA_DIR": str(settings.data_dir),
        "FLEET_WORKTREE__BASE_DIR": str(settings.worktree_base),
        "FLEET_RUNTIME__TMUX_SOCKET": fleet_socket, "FLEET_MONITOR__INTERVAL_S": str(INTERVAL_S),
        "FLEET_CONFIG_FILE": "", "TERM": "xterm-256color", "PYTHONPATH": str(Path.cwd()),
    }
    # COLUMNS and LINES may be in this process's C environment (set by a library, unseen in
    # os.environ): they would fix Textual's size at 80x24 and hide the health panel
    command = ["env", "-u", "TMUX", "-u", "COLUMNS", "-u", "LINES", *(f"{k}={v}" for k, v in env.items()),
               sys.executable, "-m", "fleet_tui"]
    outer = f"fleet-ui-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["tmux", "-L", outer, "new-session", "-d", "-s", "ui", "-x", "160", "-y", "45",
                    "-c", str(git_repo), *command], check=True)
    try:
        before = await screen_until(outer, lambda s: task.id in s and CYCLES.search(s)
                                    and int(CYCLES.search(s).group(1)) > 2, what="the control room")
        cycles_before = int(CYCLES.search(before).group(1))
        tmux(outer, "send-keys", "-t", "ui", "a")
        deadline = time.monotonic() + 15
        while f"fleet-{task.id}" not in tmux(fleet_socket, "list-clients", "-F", "#{session_name}"):
            assert time.monotonic() < deadline, "no client attached to the agent's session"
            await asyncio.sleep(0.1)
        attached_at = time.monotonic()
        await asyncio.sleep(3.0)
        tmux(fleet_socket, "detach-client", "-s", f"fleet-{task.id}")
        after = await screen_until(outer, lambda s: task.id in s and "detached from" in s, what="the UI again")
        attached_s = time.monotonic() - attached_at
        cycles_after = int(CYCLES.search(after).group(1))
        # a frozen loop would show about one cycle more; a live one about attached_s / interval
        assert cycles_after - cycles_before >= int(0.5 * attached_s / INTERVAL_S), (cycles_before, cycles_after)
        assert "running" in after  # same screen, the task still listed and live
        tmux(outer, "send-keys", "-t", "ui", "q")
        await screen_until(outer, lambda s: "Quit the control room?" in s, what="quit dialog")
        tmux(outer, "send-keys", "-t", "ui", "Enter")
        deadline = time.monotonic() + 15
        while tmux(outer, "list-panes", "-F", "#{pane_dead}#{pane_current_command}").strip().endswith("python"):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    finally:
        kill_tmux_server(outer)
    # quitting left the agent running (the default)
    assert await conductor.runtime_for("tmux").is_alive(task.id)


async def test_where_suspend_is_unsupported_the_command_is_shown(make_conductor: Any, git_repo: Path,
                                                                 monkeypatch: Any) -> None:
    monkeypatch.delenv("TMUX", raising=False)
    conductor = await make_conductor()
    op = operator()
    task = (await conductor.spawn(op, SpawnRequest(description="attach\nFLEET-DEMO: sleep 30",
                                                   repo=str(git_repo)))).task
    app = make_app(conductor=conductor, operator=op)
    async with app.run_test(size=(150, 40), notifications=True) as pilot:
        await until(pilot, app.engine_ready.is_set, what="engine ready")
        await pilot.press("a")
        expected = f"tmux -L {conductor.settings.runtime.tmux_socket} attach-session -t =fleet-{task.id}"
        await until(pilot, lambda: any(expected in n.message for n in app._notifications), what="command shown")
