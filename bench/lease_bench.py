"""Lease figures: takeover time after kill -9 of a conductor (target <= lease expiry + one
cycle) and the database load of idle conductors (transactions per second each), with 0
and with 200 live tasks held (target: independent of the number of tasks).
Usage: .venv/bin/python bench/lease_bench.py"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conductors import Fleet  # noqa: E402
from tests.fixtures.db import create_database, drop_database  # noqa: E402

OWNER = os.environ.get("FLEET_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
CONDUCTORS = 3
TTL_S, INTERVAL_S = 5.0, 1.0


async def seed_tasks(fleet: Fleet, n: int) -> list[str]:
    ids = [uuid.uuid4().hex[:12] for _ in range(n)]
    for tid in ids:  # idle agents: real tmux sessions that print nothing
        subprocess.run(["tmux", "-L", fleet.socket, "new-session", "-d", "-s", f"fleet-{tid}", "sleep", "3600"],
                       check=True)
    await fleet.query("INSERT INTO fleet_tasks (id, operator_id, status, description, repo, base_branch,"
                      " spawned_at) SELECT unnest($1::text[]), 'bench', 'running', 'idle', '/r', 'main', now()", ids)
    return ids


async def transactions(fleet: Fleet) -> int:
    name = fleet.db_url.rsplit("/", 1)[-1]
    rows = await fleet.query("SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = $1", name)
    return int(rows[0]["n"])


async def idle_load(fleet: Fleet, label: str, seconds: float = 10.0) -> None:
    await asyncio.sleep(3 * INTERVAL_S)  # let claims settle
    await fleet.query("SELECT pg_stat_clear_snapshot()")
    before = await transactions(fleet)
    await asyncio.sleep(seconds)
    await fleet.query("SELECT pg_stat_clear_snapshot()")
    after = await transactions(fleet)
    per = (after - before) / seconds / CONDUCTORS
    print(f"idle load, {CONDUCTORS} conductors, {label}: {per:.1f} transactions/s each "
          f"(cycle every {INTERVAL_S:g}s; stats are flushed by PostgreSQL with some delay)")


async def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="fleet-lease-bench-"))
    url = await create_database(OWNER)
    fleet = Fleet(url, root, f"fleet-bench-{uuid.uuid4().hex[:6]}", lease_ttl_s=TTL_S, interval_s=INTERVAL_S)
    procs = []
    try:
        procs = [fleet.start_conductor(f"c{i}") for i in range(CONDUCTORS)]
        owners = [await fleet.conductor_id(p.pid) for p in procs]
        await idle_load(fleet, "0 live tasks")
        ids = await seed_tasks(fleet, 200)
        await idle_load(fleet, "200 live tasks")
        rows = await fleet.query("SELECT task_id FROM fleet_leases WHERE owner = $1 AND expires_at > now()", owners[0])
        victim = [r["task_id"] for r in rows]
        procs[0].kill9()
        killed = time.monotonic()
        while True:
            held = await fleet.query("SELECT count(*) AS n FROM fleet_leases WHERE task_id = ANY($1::text[])"
                                     " AND owner <> $2 AND expires_at > now()", victim, owners[0])
            if held[0]["n"] == len(victim):
                break
            await asyncio.sleep(0.05)
        took = time.monotonic() - killed
        print(f"takeover after kill -9: {took:.2f}s for {len(victim)} tasks "
              f"(lease expiry {TTL_S:g}s + one cycle {INTERVAL_S:g}s = {TTL_S + INTERVAL_S:g}s)")
        assert len(ids) == 200
    finally:
        for p in procs:
            p.kill9()
        subprocess.run(["tmux", "-L", fleet.socket, "kill-server"], check=False)
        await drop_database(OWNER, url)


if __name__ == "__main__":
    asyncio.run(main())
