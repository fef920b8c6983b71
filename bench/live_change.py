"""A change made by another process, until it is on the control room's screen.

The real `fleet-tui` runs in a tmux pane (tests/e2e/terminal.py, as the journeys run it);
another process (`fleet-tui spawn`, `fleet-tui stop`) changes the fleet; the screen is read
with capture-pane every 20 ms until the change shows: the new row, then `cancelled` in it.
Each delay is counted from the change's own time in the database (the task's created_at,
the stop's audit row: the transaction's start, so never later than its commit) to the first
screen holding it. The screen is read while the command still runs (a stop goes on killing
the agent after its commit). The raw tool: the same capture-pane loop on a pane whose shell prints a
line when told (tmux's own path from a write to a read of the screen).

    .venv/bin/python bench/live_change.py [--rounds 20] [--private]

Target: p99 <= 1 s. Needs PostgreSQL (FLEET_BENCH_DATABASE_URL or postgres@127.0.0.1:5432)
and tmux; makes and drops its own database, data directory and tmux sockets. --private runs
an embedded PostgreSQL of its own instead, as on a user's machine: on a shared server, other
databases' transactions (a test suite's CREATE DATABASE) hold back the outbox's horizon,
which is server-wide.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fleet_tui.store import embedded
from tests.e2e.terminal import ControlRoom, Terminal, status_on_screen
from tests.fixtures.db import create_database, drop_database
from tests.fixtures.gitrepo import make_repo

OWNER_URL = os.environ.get("FLEET_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
POLL_S = 0.02


def wall(stamp: datetime) -> float:
    return stamp.timestamp()


async def on_screen(term: Terminal, condition, timeout_s: float = 30.0) -> float:  # type: ignore[no-untyped-def]
    """time.time() of the first screen read for which condition holds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = term.tmux("capture-pane", "-p", "-t", "room:")
        if condition(text):
            return time.time()
        await asyncio.sleep(POLL_S)
    raise TimeoutError("the change never reached the screen")


def figures(label: str, delays: list[float]) -> str:
    delays = sorted(delays)
    p99 = delays[max(int(len(delays) * 0.99) - 1, 0)] if len(delays) >= 100 else delays[-1]
    return (f"{label}: p50 {statistics.median(delays) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms "
            f"(max of {len(delays)} when fewer than 100), over {len(delays)} changes")


async def raw_tmux(rounds: int) -> list[float]:
    """The floor: a line printed in a pane, until capture-pane sees it."""
    term = Terminal(cols=80, rows=10)
    term.start(["sh", "-c", "while read n; do echo seen-$n; done"], cwd=Path.cwd(), env=dict(os.environ))
    delays = []
    try:
        for n in range(rounds):
            start = time.time()
            term.keys(str(n), "Enter")
            delays.append(await on_screen(term, lambda s, n=n: f"seen-{n}" in s) - start)
    finally:
        term.close()
    return delays


async def main(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="fleet-live-change-"))
    server = embedded.start_sync(root / "postgres") if args.private else None
    owner_url = server.owner_url if server is not None else OWNER_URL
    url = await create_database(owner_url)
    room = ControlRoom(root / "room", url, make_repo(root / "repo"))
    appear: list[float] = []
    stopped: list[float] = []
    stop_runs: list[float] = []  # the stop command's own run, start to exit (not a target)
    try:
        await room.start()
        for n in range(args.rounds):
            # the screen is read while the command runs: a command that goes on after its
            # commit (stop waits for the agent to die) must not delay the reading
            marker = f"live-change-{n:04d}"
            command = asyncio.create_task(room.cli("spawn", f"{marker}\nFLEET-DEMO: sleep 300", "--agent", "demo",
                                                   "--repo", str(room.repo), "--json"))
            shown = await on_screen(room.term, lambda s, m=marker: any(
                line.strip()[:12].isalnum() and m in line for line in s.splitlines()))
            done = await command
            assert done.returncode == 0, done.stderr
            task_id = json.loads(done.stdout)["task"]["id"]
            made = (await room.query("SELECT created_at FROM fleet_tasks WHERE id = $1", task_id))[0][0]
            appear.append(shown - wall(made))
            await on_screen(room.term, lambda s, task_id=task_id: status_on_screen(s, task_id) == "running", 60)
            began = time.monotonic()
            command = asyncio.create_task(room.cli("stop", task_id))
            shown = await on_screen(room.term, lambda s, task_id=task_id: status_on_screen(s, task_id) == "cancelled")
            done = await command
            assert done.returncode == 0, done.stderr
            stop_runs.append(time.monotonic() - began)
            when = (await room.query("SELECT created_at FROM fleet_audit WHERE task_id = $1 AND to_status = "
                                     "'cancelled' ORDER BY id LIMIT 1", task_id))[0][0]
            stopped.append(shown - wall(when))
        raw = await raw_tmux(args.rounds)
        print(figures("a `fleet-tui spawn` elsewhere: new row on screen", appear))
        print(figures("a `fleet-tui stop` elsewhere: cancelled on screen", stopped))
        print(figures("(the `fleet-tui stop` command itself, start to exit)", stop_runs))
        print(figures("raw tmux (a pane's own output until capture-pane sees it)", raw))
        both = appear + stopped
        print(figures("every change (target p99 <= 1000 ms)", both))
        print(f"median {statistics.median(both) / max(statistics.median(raw), 1e-3):.0f}x raw tmux; "
              f"load average {os.getloadavg()[0]:.2f} (on {os.cpu_count()} cores)")
    finally:
        room.close()
        await drop_database(owner_url, url)
        if server is not None:
            embedded.stop_sync(server, force=True)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--private", action="store_true", help="an embedded PostgreSQL of its own")
    asyncio.run(main(parser.parse_args()))
