"""Several headless conductors (real processes) on one database, driven over HTTP as users
drive them: every limit is one fleet's (tier, capacity, rate), a queued request is never
lost to a kill -9, a paused spawner never undoes what another conductor adopted, a slow
setup is not mistaken for an interrupted spawn."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conductors import Fleet, bearer
from tests.fixtures.engine import kill_tmux_server

TERMINAL = ("merged", "abandoned", "cancelled")
LIVE = f"status NOT IN {TERMINAL}"


def new_fleet(db_url: str, root: Path, **env: str) -> Fleet:
    return Fleet(db_url, root, f"fleet-test-{uuid.uuid4().hex[:8]}",
                 extra_env={"FLEET_REVIEW__ENABLED": "false", **env})


async def wait_until(check: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def spawn_body(repo: Path, description: str, **extra: Any) -> dict[str, Any]:
    return {"description": description, "repo": str(repo), "agent": "demo", **extra}


async def live_counts(fleet: Fleet) -> tuple[dict[str, int], dict[str, int]]:
    """(what the admissions read: fleet_live_counts, the live tasks counted now), non-zero only."""
    kept = await fleet.query("SELECT operator_id, live FROM fleet_live_counts WHERE live <> 0")
    real = await fleet.query(f"SELECT operator_id, count(*) AS live FROM fleet_tasks WHERE {LIVE}"
                             " GROUP BY operator_id")
    return ({r["operator_id"]: r["live"] for r in kept}, {r["operator_id"]: r["live"] for r in real})


@pytest.mark.slow
async def test_three_conductors_200_concurrent_spawns_keep_capacity_tier_and_rate(
        fresh_database: Any, tmp_path: Path, git_repo: Path) -> None:
    capacity, architect_limit, rate = 5, 3, 20
    fleet = new_fleet(await fresh_database(), tmp_path, **{
        "FLEET_GOVERNOR__FLEET_CAPACITY": str(capacity),
        "FLEET_GOVERNOR__TIER_LIMITS": json.dumps({"architect": architect_limit, "sovereign": 100}),
        "FLEET_GOVERNOR__RATE_LIMIT": str(rate), "FLEET_GOVERNOR__RATE_WINDOW_S": "600"})
    operators = {"arch-a": "architect", "arch-b": "architect", "arch-c": "architect", "sov-d": "sovereign"}
    headers = {op: bearer(fleet, op, tier) for op, tier in operators.items()}
    procs = [fleet.start_conductor(f"c{i}") for i in range(3)]
    worst: dict[str, int] = {}
    sampling = True

    async def sample() -> None:  # the live counts, as often as the database answers
        conn = await fleet_connection(fleet)
        try:
            while sampling:
                rows = await conn.fetch(f"SELECT operator_id, count(*) AS n FROM fleet_tasks WHERE {LIVE}"
                                        " GROUP BY operator_id")
                counts = {r["operator_id"]: r["n"] for r in rows}
                for key, n in [*counts.items(), ("fleet", sum(counts.values()))]:
                    worst[key] = max(worst.get(key, 0), n)
                await asyncio.sleep(0.005)
        finally:
            await conn.close()

    try:
        urls = [await p.api_url() for p in procs]
        sampler = asyncio.create_task(sample())
        async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=300)) as client:
            requests = [(op, urls[n % 3], n) for n in range(50) for op in operators]
            random.Random(17).shuffle(requests)
            answers = await asyncio.gather(*(client.post(
                f"{url}/api/fleet/spawn", headers=headers[op],
                json=spawn_body(git_repo, f"{op} request {n}\nFLEET-DEMO: stall 120"))
                for op, url, n in requests))
        await asyncio.sleep(1)  # a drain may still be admitting
        sampling = False
        await sampler
        by_op: dict[str, list[httpx.Response]] = {op: [] for op in operators}
        for (op, _, _), answer in zip(requests, answers):
            by_op[op].append(answer)
        codes = {op: sorted({a.status_code for a in got}) for op, got in by_op.items()}
        assert all(set(c) <= {201, 202, 403} for c in codes.values()), codes
        for op, got in by_op.items():  # the rate limit holds across the three conductors
            limited = [a for a in got if a.status_code == 403 and "rate limit" in a.json()["detail"]]
            assert len(limited) == 50 - rate, (op, len(limited))
        assert worst["fleet"] <= capacity, worst
        assert all(worst.get(op, 0) <= architect_limit for op in operators if op.startswith("arch")), worst
        live = await fleet.query(f"SELECT count(*) AS n FROM fleet_tasks WHERE {LIVE}")
        assert live[0]["n"] == capacity  # exact: full, not over
        stranded = await fleet.query("SELECT count(*) AS n FROM fleet_spawn_queue q WHERE q.status = 'admitted'"
                                     " AND NOT EXISTS (SELECT 1 FROM fleet_tasks t WHERE t.id = q.task_id)")
        assert stranded[0]["n"] == 0
        kept, real = await live_counts(fleet)
        assert kept == real
    finally:
        sampling = False
        for p in procs:
            p.kill9()
        kill_tmux_server(fleet.socket)


async def fleet_connection(fleet: Fleet) -> Any:
    import asyncpg

    return await asyncpg.connect(fleet.db_url)


@pytest.mark.slow
async def test_kill_9_while_draining_the_queue_never_strands_an_admitted_entry(
        fresh_database: Any, tmp_path: Path, git_repo: Path) -> None:
    fleet = new_fleet(await fresh_database(), tmp_path, FLEET_GOVERNOR__FLEET_CAPACITY="2",
                      FLEET_GOVERNOR__TIER_LIMITS=json.dumps({"builder": 100}))
    rng = random.Random(20261207)
    total = 30
    conductor = fleet.start_conductor("c0")
    try:
        await fleet.conductor_id(conductor.pid)  # migrated and running
        await fleet.query("INSERT INTO fleet_operators (id, tier) VALUES ('ops', 'builder')")
        for n in range(total):  # queued requests whose agents fail at once (room frees fast)
            request = spawn_body(git_repo, f"queued {n}\nFLEET-DEMO: exit 3", max_retries=0)
            await fleet.query("INSERT INTO fleet_spawn_queue (operator_id, priority, request, dedup_key)"
                              " VALUES ('ops', 50, $1::jsonb, $2)", json.dumps(request), f"q{n}")
        for kill in range(6):
            await asyncio.sleep(rng.uniform(0.3, 1.5))
            conductor.kill9()
            stranded = await fleet.query(
                "SELECT q.id, q.task_id FROM fleet_spawn_queue q WHERE q.status = 'admitted'"
                " AND NOT EXISTS (SELECT 1 FROM fleet_tasks t WHERE t.id = q.task_id)")
            assert stranded == [], f"kill {kill}: admitted without a task: {[dict(r) for r in stranded]}"
            conductor = fleet.start_conductor(f"c{kill + 1}")

        async def all_admitted() -> bool:
            rows = await fleet.query("SELECT count(*) AS n FROM fleet_spawn_queue WHERE status = 'queued'")
            return rows[0]["n"] == 0
        try:
            await wait_until(all_admitted, 120, "every queued request to be admitted")
        except AssertionError:
            rows = await fleet.query("SELECT t.id, t.status, t.failure_reason, l.owner, l.expires_at > now() AS held"
                                     " FROM fleet_tasks t LEFT JOIN fleet_leases l ON l.task_id = t.id"
                                     f" WHERE t.{LIVE}")
            raise AssertionError(f"{[dict(r) for r in rows]}\n{conductor.tail(30)}") from None
        rows = await fleet.query("SELECT q.status, t.id AS task FROM fleet_spawn_queue q"
                                 " LEFT JOIN fleet_tasks t ON t.id = q.task_id")
        assert {r["status"] for r in rows} == {"admitted"} and all(r["task"] for r in rows), [dict(r) for r in rows]
        tasks = await fleet.query("SELECT count(*) AS n FROM fleet_tasks")
        assert tasks[0]["n"] == total  # one task per request, none twice
        kept, real = await live_counts(fleet)  # six kills -9 and 30 failures later
        assert kept == real
    finally:
        conductor.kill9()
        kill_tmux_server(fleet.socket)


async def test_live_counts_follow_every_transition_and_a_wrong_one_is_repaired_at_start(
        fresh_database: Any, tmp_path: Path, git_repo: Path) -> None:
    fleet = new_fleet(await fresh_database(), tmp_path,
                      FLEET_GOVERNOR__TIER_LIMITS=json.dumps({"architect": 3}))
    headers = bearer(fleet, "arch", "architect")
    conductor = fleet.start_conductor("c0")
    try:
        url = await conductor.api_url()
        async with httpx.AsyncClient(timeout=60) as client:
            ids = []
            for n, script in enumerate(("stall 60", "stall 60", "exit 3")):
                answer = await client.post(f"{url}/api/fleet/spawn", headers=headers,
                                           json=spawn_body(git_repo, f"count {n}\nFLEET-DEMO: {script}", max_retries=0))
                assert answer.status_code == 201, answer.text
                ids.append(answer.json()["task"]["id"])
            stopped = await client.post(f"{url}/api/fleet/tasks/{ids[0]}/stop", headers=headers)
            assert stopped.status_code == 200, stopped.text
            await fleet.query("UPDATE fleet_tasks SET status = 'abandoned' WHERE id = $1", ids[1])  # by hand
            kept, real = await live_counts(fleet)
            assert kept == real
            await fleet.query("UPDATE fleet_live_counts SET live = 3 WHERE operator_id = 'arch'")  # drifted
            conductor.kill9()
            conductor = fleet.start_conductor("c1")
            url = await conductor.api_url()
            kept, real = await live_counts(fleet)
            assert kept == real and "were off; recounted" in conductor.tail(200)
            again = await client.post(f"{url}/api/fleet/spawn", headers=headers,  # 3 would have refused it
                                      json=spawn_body(git_repo, "after the repair\nFLEET-DEMO: stall 60"))
            assert again.status_code == 201, again.text
    finally:
        conductor.kill9()
        kill_tmux_server(fleet.socket)


async def test_a_queued_request_of_an_unknown_operator_is_refused_not_admitted_as_a_builder(
        fresh_database: Any, tmp_path: Path, git_repo: Path) -> None:
    fleet = new_fleet(await fresh_database(), tmp_path,
                      FLEET_GOVERNOR__TIER_LIMITS=json.dumps({"builder": 100, "architect": 1}))
    conductor = fleet.start_conductor("c0")
    try:
        await fleet.conductor_id(conductor.pid)
        await fleet.query("INSERT INTO fleet_operators (id, tier) VALUES ('arch', 'architect')")
        for n, op in enumerate(("ghost", "arch", "arch")):  # ghost: no tier anywhere
            request = spawn_body(git_repo, f"{op} {n}\nFLEET-DEMO: stall 60")
            await fleet.query("INSERT INTO fleet_spawn_queue (operator_id, priority, request, dedup_key)"
                              " VALUES ($1, 50, $2::jsonb, $3)", op, json.dumps(request), f"q{n}")

        async def decided() -> bool:
            rows = await fleet.query("SELECT count(*) AS n FROM fleet_spawn_queue WHERE status <> 'queued'")
            return rows[0]["n"] >= 2
        await wait_until(decided, 60, "the drain to decide the entries it may")
        await asyncio.sleep(1)  # a few more drain rounds
        rows = await fleet.query("SELECT operator_id, status, error FROM fleet_spawn_queue ORDER BY id")
        ghost, first, second = rows
        assert ghost["status"] == "failed" and "ghost is unknown" in ghost["error"], dict(ghost)
        assert (first["status"], second["status"]) == ("admitted", "queued")  # the architect's limit, 1
        tasks = await fleet.query("SELECT operator_id FROM fleet_tasks")
        assert [t["operator_id"] for t in tasks] == ["arch"]
    finally:
        conductor.kill9()
        kill_tmux_server(fleet.socket)


async def test_a_paused_spawner_does_not_undo_the_agent_another_conductor_adopted(
        fresh_database: Any, tmp_path: Path, git_repo: Path) -> None:
    fleet = new_fleet(await fresh_database(), tmp_path, FLEET_REVIEW__ENABLED="true")
    spawner, adopter = fleet.start_conductor("spawner"), fleet.start_conductor("adopter")
    adopter_id = await fleet.conductor_id(adopter.pid)
    lock = await fleet_connection(fleet)
    try:
        url = await spawner.api_url()
        await adopter.api_url()
        async with httpx.AsyncClient(timeout=120, headers=bearer(fleet, "ops", "sovereign")) as client:
            answer = asyncio.create_task(client.post(f"{url}/api/fleet/spawn", json=spawn_body(
                git_repo, "adopt me\nFLEET-DEMO: sleep 6")))
            task_id = await spawning_task(fleet)
            # Hold the row, so the spawner's last write (-> running) waits, and let its agent start.
            tx = lock.transaction()
            await tx.start()
            await lock.execute("SELECT 1 FROM fleet_tasks WHERE id = $1 FOR UPDATE", task_id)
            await wait_until(lambda: _true(task_id in fleet.sessions()), 30, "the agent to start")
            waiting = await blocked_write(fleet)
            spawner.signal(signal.SIGSTOP)             # paused mid-spawn ...
            await fleet.query("SELECT pg_cancel_backend($1)", waiting)  # ... its last write refused
            await tx.rollback()

            async def adopted() -> bool:
                rows = await fleet.query("SELECT status FROM fleet_tasks WHERE id = $1", task_id)
                return rows[0]["status"] != "spawning"
            await wait_until(adopted, 30, "the other conductor to adopt the spawn")
            row = (await fleet.query("SELECT status FROM fleet_tasks WHERE id = $1", task_id))[0]
            assert row["status"] == "running"
            spawner.signal(signal.SIGCONT)             # ... then resumed with its failed step
            reply = await answer
        assert reply.status_code == 201, reply.text
        await asyncio.sleep(1)
        assert await fleet.untouched([task_id]) == []  # the adopted agent was not killed
        assert (fleet.root / "worktrees" / task_id).is_dir()  # nor its worktree removed

        async def ready() -> bool:
            rows = await fleet.query("SELECT status FROM fleet_tasks WHERE id = $1", task_id)
            assert rows[0]["status"] not in ("failed", "abandoned", "cancelled"), rows[0]["status"]
            return rows[0]["status"] == "ready"
        await wait_until(ready, 90, "the adopted task to be ready")
        undone = await fleet.query("SELECT count(*) AS n FROM fleet_audit WHERE task_id = $1"
                                   " AND action = 'compensate'", task_id)
        assert undone[0]["n"] == 0
        writers = await fleet.query("SELECT actor FROM fleet_audit WHERE task_id = $1 AND to_status = 'running'",
                                    task_id)
        assert [w["actor"] for w in writers] == [f"monitor@{adopter_id}"]
        assert await fleet.duplicate_transitions() == []
    finally:
        await lock.close()
        spawner.signal(signal.SIGCONT)
        spawner.kill9()
        adopter.kill9()
        kill_tmux_server(fleet.socket)


async def _true(value: bool) -> bool:
    return value


async def spawning_task(fleet: Fleet, timeout_s: float = 30) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = await fleet.query("SELECT id, status FROM fleet_tasks")
        if rows:
            assert rows[0]["status"] in ("proposed", "spawning"), rows[0]["status"]
            if rows[0]["status"] == "spawning":
                return rows[0]["id"]
        await asyncio.sleep(0.005)
    raise AssertionError("no spawn began")


async def blocked_write(fleet: Fleet, timeout_s: float = 30) -> int:
    """The backend of the conductor's write that waits on the test's row lock."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = await fleet.query("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                                 " AND wait_event_type = 'Lock' AND query LIKE 'UPDATE fleet_tasks%'")
        if rows:
            return rows[0]["pid"]
        await asyncio.sleep(0.02)
    raise AssertionError("the spawner's write never waited on the lock")


async def test_a_setup_longer_than_the_configured_grace_reaches_running(
        fresh_database: Any, tmp_path: Path, git_repo: Path) -> None:
    setup = [sys.executable, "-c", "import time; time.sleep(5)"]
    fleet = new_fleet(await fresh_database(), tmp_path, FLEET_WORKTREE__SETUP_COMMAND=json.dumps(setup),
                      FLEET_WORKTREE__SETUP_TIMEOUT_S="20")  # the grace stays configured at 2 s
    first, second = fleet.start_conductor("first"), fleet.start_conductor("second")
    try:
        url = await first.api_url()
        await second.api_url()
        async with httpx.AsyncClient(timeout=120, headers=bearer(fleet, "ops", "sovereign")) as client:
            reply = await client.post(f"{url}/api/fleet/spawn", json=spawn_body(
                git_repo, "slow setup\nFLEET-DEMO: stall 30"))
        assert reply.status_code == 201, reply.text
        task = reply.json()["task"]
        assert task["status"] == "running", task.get("failure_context")
        failures = await fleet.query("SELECT count(*) AS n FROM fleet_audit WHERE task_id = $1"
                                     " AND to_status = 'failed'", task["id"])
        assert failures[0]["n"] == 0
        assert task["id"] in fleet.sessions()
    finally:
        first.kill9()
        second.kill9()
        kill_tmux_server(fleet.socket)
