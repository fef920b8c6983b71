"""Conductor figures, printed in one run:
- monitor cycle time with 500 live tasks (local forge) and the number of queries per cycle
  (targets: <= 1 s per cycle, a constant query count);
- admissions per second with 200 concurrent requesters (target >= 1,000/s);
- spawn-to-running of the demo agent against raw `git worktree add` + `tmux new-session`
  (target ratio <= 1.3), on an empty registry and again with 10,000 finished tasks.
Usage: .venv/bin/python bench/conductor_bench.py  (uses 127.0.0.1:5432 or FLEET_TEST_DATABASE_URL)"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fleet_tui.config import GovernorSettings  # noqa: E402
from fleet_tui.domain.errors import SpawnDeniedError  # noqa: E402
from fleet_tui.domain.models import Operator, SpawnRequest, Tier  # noqa: E402
from fleet_tui.engine.conductor import Conductor  # noqa: E402
from fleet_tui.engine.spawn.governor import Governor  # noqa: E402
from fleet_tui.engine.session import build_conductor  # noqa: E402
from fleet_tui.engine.session import close_conductor  # noqa: E402
from fleet_tui.store.db import Database  # noqa: E402
from tests.fixtures.db import create_database, drop_database, settings_for  # noqa: E402
from tests.fixtures.gitrepo import make_repo  # noqa: E402

OWNER = os.environ.get("FLEET_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


class QueryCounter:
    """Counts statements sent through asyncpg connections (fetch/execute/...)."""

    def __init__(self) -> None:
        self.count = 0
        self._saved: dict[str, object] = {}

    def __enter__(self) -> QueryCounter:
        for name in ("fetch", "fetchrow", "fetchval", "execute", "executemany"):
            original = getattr(asyncpg.Connection, name)
            self._saved[name] = original

            def wrapped(conn, *a, __original=original, **kw):  # type: ignore[no-untyped-def]
                self.count += 1
                return __original(conn, *a, **kw)
            setattr(asyncpg.Connection, name, wrapped)
        return self

    def __exit__(self, *_: object) -> None:
        for name, original in self._saved.items():
            setattr(asyncpg.Connection, name, original)


async def monitor_cycle(conductor: Conductor, n: int) -> None:
    socket = conductor.settings.runtime.tmux_socket
    ids = [uuid.uuid4().hex[:12] for _ in range(n)]
    subprocess.run(["tmux", "-L", socket, "new-session", "-d", "-s", "fleet-keeper", "sleep", "3600"], check=True)
    for tid in ids:  # cheap stand-ins for idle agents: real tmux sessions
        subprocess.run(["tmux", "-L", socket, "new-session", "-d", "-s", f"fleet-{tid}", "sleep", "3600"], check=True)
    conn = await asyncpg.connect(conductor.settings.database_url)
    await conn.executemany(
        "INSERT INTO fleet_tasks (id, operator_id, status, description, repo, base_branch, spawned_at)"
        " VALUES ($1, 'bench', 'running', 'idle agent', '/r', 'main', now())", [(t,) for t in ids])
    await conn.close()
    await conductor.start(monitor=False)
    times, queries = [], []
    for _ in range(10):
        with QueryCounter() as counter:
            started = time.perf_counter()
            await conductor.monitor.cycle()
            times.append(time.perf_counter() - started)
        queries.append(counter.count)
    print(f"monitor cycle, {n} live tasks: median {statistics.median(times) * 1000:.0f} ms, "
          f"max {max(times) * 1000:.0f} ms; queries per cycle {sorted(set(queries))}")
    subprocess.run(["tmux", "-L", socket, "kill-server"], check=False)


async def admissions(db: Database, requesters: int = 200, total: int = 4000) -> None:
    """The governor's one decision (fleet capacity + tier limit + queue under the fleet-wide
    lock, task + audit + outbox + spawn lease written) against the raw transaction a single
    conductor would need at least: lock, count, insert."""
    governor = Governor(parts_registry(db), GovernorSettings(tier_limits={Tier.SOVEREIGN: 10**9},
                                                             fleet_capacity=10**9))
    owner = "bench-conductor-1"

    async def ours(op: Operator, n: int, label: str) -> None:
        try:
            await governor.decide(op, key=f"{label}-{n}", owner=owner, description=f"t{n}", repo="/r",
                                  base_branch="main", task_type="feature")
        except SpawnDeniedError:
            pass

    async def raw(op: Operator, n: int, label: str) -> None:
        async with db.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(42), set_config('app.is_admin', 'true', true)")
            await conn.fetchval("SELECT count(*) FROM fleet_tasks WHERE operator_id = $1 AND status NOT IN"
                                " ('merged', 'abandoned', 'cancelled')", op.id)
            await conn.execute("INSERT INTO fleet_tasks (id, operator_id, description, repo, base_branch)"
                               " VALUES ($1, $2, 'raw', '/r', 'main')", uuid.uuid4().hex[:12], op.id)

    rates: dict[tuple[str, str], float] = {}
    for name, admit in (("fleet admission", ours), ("raw lock+count+insert", raw)):
        for label, distinct in (("200 operators", True), ("one operator", False)):
            ops = [Operator(id=f"bench-{uuid.uuid4().hex[:8]}", tier=Tier.SOVEREIGN) for _ in range(requesters)]
            queue: asyncio.Queue[int] = asyncio.Queue()
            for n in range(total):
                queue.put_nowait(n)

            async def requester(i: int, ops: list[Operator] = ops, distinct: bool = distinct,
                                queue: asyncio.Queue[int] = queue, admit=admit, tag: str = f"{name[:3]}{label[:3]}") -> None:
                op = ops[i] if distinct else ops[0]
                while not queue.empty():
                    await admit(op, queue.get_nowait(), tag)
            started = time.perf_counter()
            await asyncio.gather(*(requester(i) for i in range(requesters)))
            elapsed = time.perf_counter() - started
            rates[name, label] = total / elapsed
            print(f"admissions, {requesters} concurrent requesters, {label}: {name} {total / elapsed:,.0f}/s")
    for label in ("200 operators", "one operator"):
        print(f"admissions, {label}: fleet/raw ratio "
              f"{rates['fleet admission', label] / rates['raw lock+count+insert', label]:.2f} (target >= 1,000/s)")


async def finish_everything(url: str, at_least: int) -> int:
    """Every task finished (merged), topped up with finished ones to at_least: history. The
    added tasks are the spawner's, each with a costed execution (routing's reputation and
    the budget read executions: history that must not slow a spawn down)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("UPDATE fleet_tasks SET status = 'merged', completed_at = now()"
                           " WHERE status NOT IN ('merged', 'abandoned', 'cancelled')")
        have = await conn.fetchval("SELECT count(*) FROM fleet_tasks")
        ids = [(uuid.uuid4().hex[:12],) for _ in range(max(at_least - have, 0))]
        await conn.executemany(
            "INSERT INTO fleet_tasks (id, operator_id, status, description, repo, base_branch, completed_at,"
            " agent, model, task_type) VALUES ($1, 'bench-spawner', 'merged', 'old', '/r', 'main', now(),"
            " 'demo', 'demo-small', 'feature')", ids)
        await conn.executemany(
            "INSERT INTO fleet_executions (task_id, operator_id, attempt, agent, model, task_type, runtime,"
            " finished_at, exit_code, cost_usd) VALUES ($1, 'bench-spawner', 1, 'demo', 'demo-small', 'feature',"
            " 'tmux', now(), 0, 0.01)", ids)
        await conn.execute("ANALYZE fleet_tasks; ANALYZE fleet_executions")
        return await conn.fetchval("SELECT count(*) FROM fleet_tasks")
    finally:
        await conn.close()


def parts_registry(db: Database):  # type: ignore[no-untyped-def]
    from fleet_tui.store.tasks import TaskRegistry

    return TaskRegistry(db)


async def first_output(path: Path, started: float, timeout_s: float = 30) -> float:
    deadline = started + timeout_s
    while time.perf_counter() < deadline:
        if path.exists() and path.stat().st_size > 0:
            return time.perf_counter() - started
        await asyncio.sleep(0.002)
    raise AssertionError(f"no output in {path}")


async def spawn_ratio(conductor: Conductor, runs: int = 15, label: str = "") -> None:
    """Spawn-to-running = request until the demo agent's first output line, for both."""
    repo = make_repo(Path(tempfile.mkdtemp()) / "repo")
    raw_root = Path(tempfile.mkdtemp())
    prompt = raw_root / "prompt.txt"
    prompt.write_text("bench\nFLEET-DEMO: sleep 30\n")
    socket = f"fleet-bench-raw-{uuid.uuid4().hex[:6]}"
    op = Operator(id="bench-spawner", tier=Tier.SOVEREIGN)
    runtime = conductor.runtime_for("tmux")
    ours, raw = [], []
    for i in range(runs):
        log = raw_root / f"raw-{i}.log"
        started = time.perf_counter()
        subprocess.run(["git", "worktree", "add", "-q", "-b", f"raw-{i}", str(raw_root / f"w{i}"), "main"],
                       cwd=repo, check=True)
        subprocess.run(["tmux", "-L", socket, "new-session", "-d", "-s", f"raw-{i}", "-c", str(raw_root / f"w{i}"),
                        f"exec {sys.executable} -m fleet_tui.infra.demo_agent < {prompt}", ";",
                        "pipe-pane", "-t", f"raw-{i}", "-o", f"cat >> {log}"], check=True)
        raw.append(await first_output(log, started))
        started = time.perf_counter()
        result = await conductor.spawn(op, SpawnRequest(description=f"bench {label} {i}\nFLEET-DEMO: sleep 30",
                                                        repo=str(repo), agent="demo"))
        assert result.task.status == "running", result.task.failure_context
        ours.append(await first_output(runtime.log_path(result.task.id), started))
    subprocess.run(["tmux", "-L", socket, "kill-server"], check=False)
    subprocess.run(["tmux", "-L", conductor.settings.runtime.tmux_socket, "kill-server"], check=False)
    await asyncio.sleep(1)  # the server is gone before the next step starts one on the socket
    o, r = statistics.median(ours), statistics.median(raw)
    print(f"spawn-to-running {label}(until the demo agent's first output): fleet {o * 1000:.0f} ms vs raw "
          f"git worktree add + tmux new-session {r * 1000:.0f} ms; ratio {o / r:.2f}")


async def open_conductor_on(url: str, root: Path, capacity: int = 1000) -> Conductor:
    settings = settings_for(url, root / "data")
    settings.runtime.tmux_socket = f"fleet-bench-{uuid.uuid4().hex[:6]}"
    settings.governor.fleet_capacity = capacity
    settings.governor.tier_limits = {Tier.SOVEREIGN: 10**6}
    db = await Database.open(settings)
    return build_conductor(settings, db)


def load() -> str:
    return "load average " + ", ".join(f"{n:.2f}" for n in os.getloadavg())


async def main() -> None:
    print(f"start: {load()} ({os.cpu_count()} cores)")
    root = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    url = await create_database(OWNER)
    try:
        conductor = await open_conductor_on(url, root)
        await spawn_ratio(conductor, label="on an empty registry ")
        await finish_everything(url, 0)
        await monitor_cycle(conductor, 500)
        await admissions(conductor.parts.db)
        finished = await finish_everything(url, 10_000)
        await spawn_ratio(conductor, label=f"with {finished:,} finished tasks ")
        await close_conductor(conductor)
    finally:
        await drop_database(OWNER, url)
    print(f"end: {load()}")


if __name__ == "__main__":
    asyncio.run(main())
