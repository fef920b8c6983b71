"""kill -9 of conductors (and of CLI spawns) at random moments, 20 times: after each
restart every task is live and watched by the new conductor, or failed with a reason; no
worktree or session without a task; no transition applied twice."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from pathlib import Path
from typing import Any

from tests.e2e.conductors import Fleet
from tests.fixtures.engine import kill_tmux_server

RUNS = 20
TERMINAL = ("merged", "abandoned", "cancelled")


async def problems(fleet: Fleet, me: str) -> list[str]:
    rows = await fleet.query(
        "SELECT t.id, t.status, t.failure_reason, l.owner, coalesce(l.expires_at > now(), false) AS held"
        " FROM fleet_tasks t LEFT JOIN fleet_leases l ON l.task_id = t.id")
    found = []
    ids = {r["id"] for r in rows}
    for r in rows:
        if r["status"] in TERMINAL:
            continue
        if not (r["owner"] == me and r["held"]):
            found.append(f"{r['id']} {r['status']} not watched (lease {r['owner']}, held={r['held']})")
        if r["status"] == "failed" and not r["failure_reason"]:
            found.append(f"{r['id']} failed without a reason")
    found += [f"session fleet-{s} has no task" for s in fleet.sessions() - ids]
    found += [f"worktree {w} has no task" for w in fleet.worktrees() - ids]
    found += [f"transition applied twice: {dict(d)}" for d in await fleet.duplicate_transitions()]
    return found


async def wait_settled(fleet: Fleet, me: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        found = await problems(fleet, me)
        if not found:
            return
        if time.monotonic() > deadline:
            raise AssertionError("\n".join(found))
        await asyncio.sleep(0.2)


async def test_kill_9_at_random_moments_leaves_every_task_watched_or_failed(
        fresh_database: Any, tmp_path: Path, git_repo: Path) -> None:
    fleet = Fleet(await fresh_database(), tmp_path, f"fleet-test-{uuid.uuid4().hex[:8]}",
                  extra_env={"FLEET_GOVERNOR__TIER_LIMITS": json.dumps({"sovereign": 1000})})
    rng = random.Random(20261121)
    conductor = fleet.start_conductor("c0")
    try:
        for run in range(RUNS):
            clis = [fleet.start_cli("spawn", f"run {run} task {i}\nFLEET-DEMO: sleep {rng.uniform(0.2, 2):.1f}",
                                    "--repo", str(git_repo), name=f"cli-{run}-{i}") for i in range(2)]
            await asyncio.sleep(rng.uniform(0.05, 1.0))
            clis[0].kill9()                      # a spawn dies somewhere in its saga
            await asyncio.sleep(rng.uniform(0.0, 1.0))
            conductor.kill9()                    # the conductor dies somewhere in its cycle
            assert clis[1].proc.wait(60) == 0, clis[1].tail()
            clis[1].handle.close()
            conductor = fleet.start_conductor(f"c{run + 1}")
            me = await fleet.conductor_id(conductor.pid)
            await wait_settled(fleet, me)
        count = (await fleet.query("SELECT count(*) AS n FROM fleet_tasks"))[0]["n"]
        assert count >= RUNS  # every surviving CLI spawn made its task
    finally:
        conductor.kill9()
        kill_tmux_server(fleet.socket)
