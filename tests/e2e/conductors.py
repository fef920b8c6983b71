"""Conductors as real processes (the installed `fleet-tui --headless`) sharing one database,
tmux socket and worktree base, for crash and takeover tests."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from tests.e2e.headless import FLEET_TUI
from tests.fixtures.db import fetch

PASSING_CI = [sys.executable, "-c", "pass"]


@dataclass
class Fleet:
    db_url: str
    root: Path
    socket: str
    lease_ttl_s: float = 2.0
    interval_s: float = 0.2
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_") and k != "DATABASE_URL"}
        env.update({
            "FLEET_DATABASE__URL": self.db_url,
            "FLEET_DATA_DIR": str(self.root / "data"),
            "FLEET_RUNTIME__TMUX_SOCKET": self.socket,
            "FLEET_WORKTREE__BASE_DIR": str(self.root / "worktrees"),
            "FLEET_FORGE__CI_COMMAND": json.dumps(PASSING_CI),
            "FLEET_MONITOR__INTERVAL_S": str(self.interval_s),
            "FLEET_MONITOR__LEASE_TTL_S": str(self.lease_ttl_s),
            "FLEET_WORKTREE__SETUP_TIMEOUT_S": "2",  # so that the spawn grace may be 2 s too
            "FLEET_MONITOR__SPAWN_GRACE_S": "2",
            "FLEET_RETRY__BASE_S": "0.1",
            "FLEET_RETRY__CAP_S": "0.5",
            "FLEET_GOVERNOR__FLEET_CAPACITY": "200",
            **self.extra_env,
        })
        return env

    def start_conductor(self, name: str) -> Proc:
        log = self.root / f"{name}.log"
        handle = log.open("ab")
        proc = subprocess.Popen([str(FLEET_TUI), "--headless", "--listen", "127.0.0.1:0"],
                                cwd=self.root, env=self.env(), stdout=handle, stderr=subprocess.STDOUT)
        return Proc(proc, log, handle)

    def start_cli(self, *args: str, name: str = "cli") -> Proc:
        log = self.root / f"{name}.log"
        handle = log.open("ab")
        proc = subprocess.Popen([str(FLEET_TUI), *args], cwd=self.root, env=self.env(),
                                stdout=handle, stderr=subprocess.STDOUT)
        return Proc(proc, log, handle)

    async def query(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return await fetch(self.db_url, sql, *args)

    async def conductor_id(self, pid: int, timeout_s: float = 90) -> str:  # a busy host starts slowly
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                rows = await self.query("SELECT id FROM fleet_conductors WHERE pid = $1 AND stopped_at IS NULL"
                                        " ORDER BY started_at DESC LIMIT 1", pid)
            except asyncpg.UndefinedTableError:  # the conductors are still migrating
                rows = []
            if rows:
                return rows[0]["id"]
            await asyncio.sleep(0.1)
        raise AssertionError(f"conductor pid {pid} never registered")

    def sessions(self) -> set[str]:
        out = subprocess.run(["tmux", "-L", self.socket, "list-sessions", "-F", "#{session_name}"],
                             capture_output=True, text=True).stdout
        return {name[len("fleet-"):] for name in out.split() if name.startswith("fleet-")}

    async def untouched(self, task_ids: list[str]) -> list[dict[str, Any]]:
        """The tasks whose agent was touched: neither still running in its session nor
        exited 0 on its own (then the conductor released the session). [] when none was."""
        alive = self.sessions()
        rows = await self.query("SELECT id, status, exit_code FROM fleet_tasks WHERE id = ANY($1::text[])", task_ids)
        return [dict(r) for r in rows if r["id"] not in alive and not (r["status"] != "running" and r["exit_code"] == 0)]

    def worktrees(self) -> set[str]:
        base = self.root / "worktrees"
        return {p.name for p in base.iterdir()} if base.exists() else set()

    async def duplicate_transitions(self) -> list[Any]:
        """(task, version) pairs written twice: a transition applied by two conductors."""
        return await self.query(
            "SELECT task_id, version, count(*) FROM fleet_audit WHERE action = 'transition'"
            " GROUP BY task_id, version HAVING count(*) > 1")


@dataclass
class Proc:
    proc: subprocess.Popen[bytes]
    log: Path
    handle: Any

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill9(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.handle.close()

    def terminate(self, timeout_s: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout_s)
        self.handle.close()
        return code

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])

    async def api_url(self, timeout_s: float = 60) -> str:
        """The URL its API listens on (--listen 127.0.0.1:0 picks a port; the log says which)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = LISTENING.findall(self.log.read_text(errors="replace"))
            if found:
                return found[-1]
            assert self.proc.poll() is None, self.tail(60)
            await asyncio.sleep(0.05)
        raise AssertionError("the API never listened:\n" + self.tail(60))


LISTENING = re.compile(r"api listening on (http://127\.0\.0\.1:\d+)")


def bearer(fleet: Fleet, operator_id: str, tier: str) -> dict[str, str]:
    """Authorization for an operator, signed by the fleet's key (shared through its data dir)."""
    from fleet_tui.engine.kit.tokens import mint
    from fleet_tui.engine.kit.keys import KeyStore

    token = mint(KeyStore(fleet.root / "data" / "keys"), operator_id=operator_id, tier=tier,
                 issuer="fleet-tui", audience="fleet-tui")
    return {"Authorization": f"Bearer {token}"}
