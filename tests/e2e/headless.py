"""Headless conductors as a user runs them: the installed `fleet-tui` console script (next to
sys.executable) with `--headless --listen 127.0.0.1:0`, configured by FLEET_* variables, each
in its own process; the URL is read from its JSON log."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tests.fixtures.engine import kill_tmux_server

FLEET_TUI = Path(sys.executable).with_name("fleet-tui")
LISTENING = re.compile(r"api listening on (http://127\.0\.0\.1:\d+)")


def headless_env(db_url: str, root: Path, **fleet: str) -> dict[str, str]:
    """The caller's environment without FLEET_*/DATABASE_URL, plus a private data dir, tmux
    socket and worktree base under root; `fleet` adds FLEET_<KEY> variables (a__b -> A__B)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_") and k != "DATABASE_URL"}
    env.update({
        "FLEET_DATABASE__URL": db_url,
        "FLEET_DATA_DIR": str(root / "data"),
        "FLEET_RUNTIME__TMUX_SOCKET": f"fleet-test-{uuid.uuid4().hex[:8]}",
        "FLEET_WORKTREE__BASE_DIR": str(root / "worktrees"),
        "FLEET_MONITOR__INTERVAL_S": "0.2",
    })
    env.update({f"FLEET_{key.upper()}": value for key, value in fleet.items()})
    return env


class Headless:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.handle = log.open("ab")
        self.proc = subprocess.Popen([str(FLEET_TUI), "--headless", "--listen", "127.0.0.1:0"],
                                     cwd=log.parent, env=env, stdout=self.handle, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    async def url(self, timeout_s: float = 90) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = LISTENING.findall(self.text())
            if found:
                return found[-1]
            assert self.proc.poll() is None, self.text()[-3000:]
            await asyncio.sleep(0.1)
        raise AssertionError("headless server did not start: " + self.text()[-3000:])

    def stop(self, timeout_s: float = 60) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.handle.close()
        kill_tmux_server(self.env["FLEET_RUNTIME__TMUX_SOCKET"])


@asynccontextmanager
async def headless(env: dict[str, str], log: Path) -> AsyncIterator[tuple[Headless, str]]:
    server = Headless(env, log)
    try:
        yield server, await server.url()
    finally:
        await asyncio.to_thread(server.stop)
