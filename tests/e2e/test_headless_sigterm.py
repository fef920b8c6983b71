"""`python -m fleet_tui --headless --listen` as a real process: SIGTERM while spawn requests
are in flight lets them finish (201, agents running), the process exits 0, the agents keep
running in their tmux sessions, and a restart reconciles: the live ones stay running, the
one whose agent died while the conductor was down is failed with conductor_restart."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from fleet_tui.engine.kit.tokens import mint
from fleet_tui.engine.kit.keys import KeyStore
from tests.fixtures.engine import kill_tmux_server

SLOW_SETUP = [sys.executable, "-c", "import time; time.sleep(2)"]  # keeps each spawn in flight
LISTENING = re.compile(r"api listening on (http://127\.0\.0\.1:\d+)")


def server_env(db_url: str, data: Path, socket: str, worktrees: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_") and k != "DATABASE_URL"}
    env.update({
        "FLEET_DATABASE__URL": db_url,
        "FLEET_DATA_DIR": str(data),
        "FLEET_RUNTIME__TMUX_SOCKET": socket,
        "FLEET_WORKTREE__BASE_DIR": str(worktrees),
        "FLEET_WORKTREE__SETUP_COMMAND": json.dumps(SLOW_SETUP),
        "FLEET_MONITOR__INTERVAL_S": "0.2",
        "FLEET_RETRY__AUTO": "false",  # so the reconciled failure stays visible
    })
    return env


class Server:
    def __init__(self, env: dict[str, str], cwd: Path, log: Path) -> None:
        self.log = log
        self.offset = log.stat().st_size if log.exists() else 0  # this run's lines start here
        self.handle = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fleet_tui", "--headless", "--listen", "127.0.0.1:0"],
            cwd=cwd, env=env, stdout=self.handle, stderr=subprocess.STDOUT)

    def text(self) -> str:
        with self.log.open("rb") as handle:
            handle.seek(self.offset)
            return handle.read().decode(errors="replace")

    async def url(self, timeout_s: float = 60) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = LISTENING.findall(self.text())
            if found and self.proc.poll() is None:
                return found[-1]
            assert self.proc.poll() is None, self.text()[-3000:]
            await asyncio.sleep(0.1)
        raise AssertionError("server did not start: " + self.text()[-3000:])

    def records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.text().splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.handle.close()


def tmux_has(socket: str, task_id: str) -> bool:
    return subprocess.run(["tmux", "-L", socket, "has-session", "-t", f"fleet-{task_id}"],
                          capture_output=True).returncode == 0


async def test_sigterm_drains_requests_keeps_agents_and_a_restart_reconciles(
        fresh_database: Any, git_repo: Path, tmp_path: Path) -> None:
    db_url = await fresh_database()
    socket = f"fleet-test-{uuid.uuid4().hex[:8]}"
    data = tmp_path / "data"
    env = server_env(db_url, data, socket, tmp_path / "worktrees")
    keystore = KeyStore(data / "keys")
    token = mint(keystore, operator_id="ops", tier="sovereign", issuer="fleet-tui", audience="fleet-tui")
    auth = {"Authorization": f"Bearer {token}"}
    log = tmp_path / "server.log"
    first = Server(env, tmp_path, log)
    second: Server | None = None
    try:
        url = await first.url()
        async with httpx.AsyncClient(base_url=url, headers=auth, timeout=60) as client:
            spawns = [asyncio.create_task(client.post("/api/fleet/spawn", json={
                "description": f"long job {i}\nFLEET-DEMO: sleep 300", "repo": str(git_repo)}))
                for i in range(3)]
            # Each task row exists before its (slow) worktree setup ends: all three in flight.
            deadline = time.monotonic() + 20
            while True:
                status = (await client.get("/api/fleet/status")).json()
                if len(status["tasks"]) == 3:
                    break
                assert time.monotonic() < deadline, status
                await asyncio.sleep(0.05)
            assert {t["status"] for t in status["tasks"]} <= {"proposed", "spawning"}
            first.proc.send_signal(signal.SIGTERM)
            responses = await asyncio.gather(*spawns)
        assert [r.status_code for r in responses] == [201, 201, 201]
        tasks = [r.json()["task"] for r in responses]
        assert {t["status"] for t in tasks} == {"running"}
        # JSON access lines carry each request's trace id, the one its task was spawned under.
        spawn_traces = {r["trace_id"] for r in first.records() if r.get("path") == "/api/fleet/spawn"}
        assert {r.headers["x-trace-id"] for r in responses} == spawn_traces == {t["trace_id"] for t in tasks}
        assert await asyncio.to_thread(first.proc.wait, 60) == 0
        messages = [r["msg"] for r in first.records()]
        draining = next(r for r in first.records() if r["msg"].startswith("api draining"))
        assert draining["in_flight"] == 3
        assert messages.index("headless conductor stopped") > messages.index(draining["msg"])

        ids = [t["id"] for t in tasks]
        assert all(tmux_has(socket, tid) for tid in ids)  # agents outlive the conductor
        subprocess.run(["tmux", "-L", socket, "kill-session", "-t", f"fleet-{ids[0]}"], check=True)

        second = Server(env, tmp_path, log)
        url = await second.url()
        async with httpx.AsyncClient(base_url=url, headers=auth, timeout=30) as client:
            after = {tid: (await client.get(f"/api/fleet/tasks/{tid}")).json()["task"] for tid in ids}
            assert (await client.get("/healthz")).status_code == 200
        assert after[ids[0]]["status"] == "failed"
        assert after[ids[0]]["failure_reason"] == "conductor_restart"
        assert [after[tid]["status"] for tid in ids[1:]] == ["running", "running"]
        assert all(tmux_has(socket, tid) for tid in ids[1:])
    finally:
        first.stop()
        if second is not None:
            second.proc.send_signal(signal.SIGTERM)
            try:
                second.proc.wait(timeout=30)
            finally:
                second.stop()
        kill_tmux_server(socket)
