"""Several conductors on one database: one watcher per task, takeover after SIGTERM and
kill -9, fencing of a paused conductor, a conductor cut off from the database."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

from fleet_tui.domain.errors import LeaseLostError
from fleet_tui.domain.models import Lease, SpawnRequest, TaskPatch, Tier
from fleet_tui.domain.status import TaskStatus
from fleet_tui.domain.models import SYSTEM
from fleet_tui.engine.conductor import Conductor
from fleet_tui.store import leases
from tests.e2e.conductors import Fleet
from tests.fixtures.engine import operator

TERMINAL = ("merged", "abandoned", "cancelled")


def fleet_of(conductor: Conductor, **kw: Any) -> Fleet:
    s = conductor.settings
    fleet = Fleet(s.database_url or "", s.data_dir.parent, s.runtime.tmux_socket, **kw)
    fleet.extra_env["FLEET_GOVERNOR__TIER_LIMITS"] = '{"sovereign": 1000}'
    return fleet


async def holders(fleet: Fleet) -> dict[str, str]:
    rows = await fleet.query("SELECT task_id, owner FROM fleet_leases WHERE expires_at > now()")
    return {r["task_id"]: r["owner"] for r in rows}


async def wait_until(check: Any, timeout_s: float, what: str) -> float:
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def spawn_many(conductor: Conductor, repo: Path, n: int, description: str) -> list[str]:
    op = operator()
    ids = []
    for i in range(n):
        result = await conductor.spawn(op, SpawnRequest(description=f"agent {i}\n{description}", repo=str(repo)))
        assert result.task.status == TaskStatus.RUNNING, result.task.failure_context
        ids.append(result.task.id)
    await leases.release(conductor.parts.db, conductor.conductor_id)  # it only made them: hand them on
    return ids


async def test_three_conductors_one_watcher_each_and_takeover_after_sigterm_and_kill9(
        make_conductor: Any, git_repo: Path) -> None:
    spawner = await make_conductor(governor__tier_limits={Tier.SOVEREIGN: 1000})
    ids = await spawn_many(spawner, git_repo, 30, "FLEET-DEMO: sleep 25")
    fleet = fleet_of(spawner)
    procs = [fleet.start_conductor(f"c{i}") for i in range(3)]
    try:
        owners = [await fleet.conductor_id(p.pid) for p in procs]

        async def shared_fairly() -> bool:
            # the first conductor up may claim everything; beyond its fair share
            # (ceil(30/3)+2) it stops renewing, and the others take over at expiry
            held = await holders(fleet)
            return (set(ids) <= set(held) and set(held.values()) == set(owners)
                    and all(list(held.values()).count(o) <= 12 for o in owners))
        await wait_until(shared_fairly, 30, "the three conductors to share the 30 tasks fairly")

        procs[0].terminate()   # clean stop: hands its leases back
        procs[1].kill9()       # crash: its leases must expire first
        survivor = owners[2]

        async def survivor_holds_all() -> bool:
            held = await holders(fleet)
            return all(held.get(t) == survivor for t in ids)
        took = await wait_until(survivor_holds_all, 30, "takeover by the survivor")
        assert took <= fleet.lease_ttl_s + fleet.interval_s + 2.0, took  # expiry + one cycle (+ start slack)

        async def all_changes_found() -> bool:
            rows = await fleet.query("SELECT count(*) AS n FROM fleet_tasks WHERE status = 'running'")
            return rows[0]["n"] == 0
        await wait_until(all_changes_found, 90, "every agent's change to be found")
        assert await fleet.duplicate_transitions() == []
        writers = await fleet.query(
            "SELECT DISTINCT actor FROM fleet_audit WHERE action = 'transition' AND from_status = 'running'")
        assert {w["actor"] for w in writers} == {f"monitor@{survivor}"}
    finally:
        for p in procs:
            p.kill9()


async def test_a_stale_lease_writes_nothing(make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor()
    [task_id] = await spawn_many(conductor, git_repo, 1, "FLEET-DEMO: sleep 20")
    db = conductor.parts.db
    [(task, old)] = await leases.claim(db, "conductor-a", ttl_s=60, limit=10)
    async with db.system() as conn:  # a's lease lapses (paused past expiry) ...
        await conn.execute("UPDATE fleet_leases SET expires_at = now() - interval '1 s'")
    [(_, new)] = await leases.claim(db, "conductor-b", ttl_s=60, limit=10)  # ... and b takes over
    assert new.epoch == old.epoch + 1
    for attempt in (
        conductor.registry.transition(task_id, task.version, TaskStatus.FAILED, operator=SYSTEM, lease=old),
        conductor.registry.update(task_id, task.version, operator=SYSTEM,
                                  patch=TaskPatch(needs_input=True), lease=old),
        conductor.registry.record_failure(task_id, operator=SYSTEM, context={"late": True}, lease=old),
    ):
        try:
            await attempt
        except LeaseLostError:
            pass
        else:
            raise AssertionError("a write under a lost lease went through")
    after = await conductor.registry.get(task_id, operator=SYSTEM)
    assert after.version == task.version and after.status == TaskStatus.RUNNING
    assert after.retry_count == 0 and not after.needs_input
    moved = await conductor.registry.transition(task_id, task.version, TaskStatus.CANCELLED,
                                                operator=SYSTEM, lease=Lease(owner="conductor-b", epoch=new.epoch))
    assert moved.status == TaskStatus.CANCELLED


async def test_a_paused_conductor_changes_nothing_when_it_resumes(make_conductor: Any, git_repo: Path) -> None:
    spawner = await make_conductor()
    [task_id] = await spawn_many(spawner, git_repo, 1, "FLEET-DEMO: sleep 4")
    fleet = fleet_of(spawner)
    first = fleet.start_conductor("paused")
    second = None
    try:
        paused_id = await fleet.conductor_id(first.pid)
        await wait_until(lambda: _held_by(fleet, task_id, paused_id), 30, "the first conductor's lease")
        first.signal(signal.SIGSTOP)                   # paused past expiry ...
        second = fleet.start_conductor("successor")
        successor_id = await fleet.conductor_id(second.pid)
        await wait_until(lambda: _held_by(fleet, task_id, successor_id), 30, "takeover")

        async def decided() -> bool:
            rows = await fleet.query("SELECT status FROM fleet_tasks WHERE id = $1", task_id)
            return rows[0]["status"] != "running"
        await wait_until(decided, 60, "the successor to decide the task")
        first.signal(signal.SIGCONT)                   # ... then resumed, with stale state
        await asyncio.sleep(fleet.lease_ttl_s + 1)
        assert await fleet.duplicate_transitions() == []
        late = await fleet.query(
            "SELECT count(*) AS n FROM fleet_audit WHERE task_id = $1 AND actor = $2 AND action = 'transition'"
            " AND created_at > (SELECT min(created_at) FROM fleet_audit WHERE task_id = $1 AND actor = $3)",
            task_id, f"monitor@{paused_id}", f"monitor@{successor_id}")
        assert late[0]["n"] == 0
        assert first.proc.poll() is None  # it survived and simply lost the task
    finally:
        first.kill9()
        if second is not None:
            second.kill9()


async def _held_by(fleet: Fleet, task_id: str, owner: str) -> bool:
    return (await holders(fleet)).get(task_id) == owner


async def test_a_conductor_cut_off_from_the_database_reconnects_and_catches_up(
        make_conductor: Any, git_repo: Path) -> None:
    spawner = await make_conductor()
    ids = await spawn_many(spawner, git_repo, 3, "FLEET-DEMO: sleep 3")
    fleet = fleet_of(spawner)
    proc = fleet.start_conductor("cut")
    try:
        me = await fleet.conductor_id(proc.pid)
        await wait_until(lambda: _all_held(fleet, ids, me), 30, "leases")
        database = fleet.db_url.rsplit("/", 1)[-1]
        for _ in range(3):  # cut it off several times while agents work
            await fleet.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                              " WHERE datname = $1 AND usename = 'fleet_app'", database)
            await asyncio.sleep(0.7)
        assert await fleet.untouched(ids) == []  # agents were never touched (nor retried, below)

        async def caught_up() -> bool:
            rows = await fleet.query("SELECT count(*) AS n FROM fleet_tasks WHERE id = ANY($1::text[])"
                                     " AND status IN ('pr_created', 'reviewing', 'ready')", ids)
            return rows[0]["n"] == len(ids)
        try:
            await wait_until(caught_up, 60, "the conductor to catch up")
        except AssertionError:
            rows = await fleet.query("SELECT id, status, failure_reason FROM fleet_tasks WHERE id = ANY($1::text[])",
                                     ids)
            raise AssertionError(f"not caught up: {[dict(r) for r in rows]}\n{proc.tail(60)}") from None
        assert await fleet.duplicate_transitions() == []
        retried = await fleet.query("SELECT id FROM fleet_tasks WHERE id = ANY($1::text[]) AND retry_count > 0", ids)
        assert retried == []
        assert proc.proc.poll() is None
    finally:
        proc.kill9()


async def _all_held(fleet: Fleet, ids: list[str], owner: str) -> bool:
    held = await holders(fleet)
    return all(held.get(t) == owner for t in ids)
