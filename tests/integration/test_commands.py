"""Commands through the database (observer faces -> conductors): run by the conductor that
holds the task, taken again after a conductor dies, refused with the field and the rule
when malformed. Real PostgreSQL, git, tmux and the demo agent."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from fleet_tui.domain.commands import CommandStatus
from fleet_tui.domain.errors import ValidationFailed
from fleet_tui.domain.models import Operator, SpawnRequest, Tier
from fleet_tui.domain.status import TaskStatus
from fleet_tui.engine.session import command_worker
from fleet_tui.domain.models import SYSTEM
from fleet_tui.engine.workers.command_client import NoConductorAnswered
from fleet_tui.engine.observer.observer import Observer
from fleet_tui.store import commands as command_store
from fleet_tui.store import leases
from fleet_tui.store.db import Database
from tests.fixtures.engine import operator

S = TaskStatus


async def spawn_sleeper(conductor: Any, op: Operator, repo: Path, what: str = "hold me") -> Any:
    result = await conductor.spawn(op, SpawnRequest(description=f"{what}\nFLEET-DEMO: sleep 60", repo=str(repo)))
    assert result.task.status == S.RUNNING, result.task.failure_context
    deadline = time.monotonic() + 10
    while not any("[demo]" in line for line in await conductor.logs(op, result.task.id)):
        assert time.monotonic() < deadline, "the agent never printed"
        await asyncio.sleep(0.05)
    await leases.release(conductor.parts.db, conductor.conductor_id)  # its spawn lease: any conductor may watch it
    return result.task


async def test_a_task_command_runs_only_in_the_conductor_holding_the_task(make_conductor: Any, git_repo: Path) -> None:
    a = await make_conductor()
    b = await make_conductor(same_db=a)
    db, op = a.parts.db, operator()
    task = await spawn_sleeper(a, op, git_repo)
    for c in (a, b):
        await leases.register(db, c.conductor_id, "testhost", os.getpid())
    assert [t.id for t, _ in await leases.claim(db, a.conductor_id, 30, 10)] == [task.id]
    worker_a, worker_b = command_worker(a), command_worker(b)

    stop_id = await command_store.submit(db, op, "stop", task_id=task.id)
    assert await worker_b.run_once() == 0  # b may not: a holds the task (and its agent)
    assert (await command_store.fetch(db, op, stop_id)).status == CommandStatus.PENDING
    assert await worker_a.run_once() == 1
    await worker_a.idle()
    stopped = await command_store.fetch(db, op, stop_id)
    assert (stopped.status, stopped.claimed_by, stopped.attempts) == (CommandStatus.DONE, a.conductor_id, 1)
    assert stopped.result["task"]["status"] == "cancelled"
    assert (await a.registry.get(task.id, operator=SYSTEM)).status == S.CANCELLED
    assert not await a.runtime_for(task.runtime).is_alive(task.id)

    # finished, the task still belongs to its last holder while that one lives
    logs_id = await command_store.submit(db, op, "logs", task_id=task.id, args={"lines": 50})
    assert await worker_b.run_once() == 0
    await leases.release(db, a.conductor_id)  # a stops cleanly: anyone may answer now
    assert await worker_b.run_once() == 1
    await worker_b.idle()
    logs = await command_store.fetch(db, op, logs_id)
    assert logs.claimed_by == b.conductor_id and any("[demo]" in line for line in logs.result["lines"])

    # a spawn goes to any conductor
    spawn_id = await command_store.submit(db, op, "spawn", args={"request": {
        "description": "from an observer\nFLEET-DEMO: sleep 30", "repo": str(git_repo)}})
    assert await worker_b.run_once() == 1
    await worker_b.idle()
    spawned = await command_store.fetch(db, op, spawn_id)
    assert spawned.status == CommandStatus.DONE, spawned.error
    assert spawned.claimed_by == b.conductor_id
    stored = await a.registry.get(spawned.result["task"]["id"], operator=SYSTEM)
    assert (stored.status, stored.operator_id) == (S.RUNNING, op.id)


async def test_a_command_claimed_by_a_dead_conductor_is_taken_again_and_not_done_twice(
        make_conductor: Any, git_repo: Path) -> None:
    survivor = await make_conductor(monitor__lease_ttl_s=1.0)
    db, op = survivor.parts.db, operator()
    task = await spawn_sleeper(survivor, op, git_repo)
    dead = "deadhost-1-0000dead"
    await leases.register(db, dead, "deadhost", 1)
    await leases.register(db, survivor.conductor_id, "testhost", os.getpid())
    assert [t.id for t, _ in await leases.claim(db, dead, 1.0, 10)] == [task.id]
    stop_id = await command_store.submit(db, op, "stop", task_id=task.id)
    taken = await command_store.claim(db, dead, ttl_s=1.0, alive_s=1.0, limit=5)
    assert [c.id for c in taken] == [stop_id]
    # the dead conductor got as far as cancelling, not as far as killing the agent
    await survivor.move(task, S.CANCELLED, actor=op.id, reason="stopped by operator", operator=op)
    runtime = survivor.runtime_for(task.runtime)
    assert await runtime.is_alive(task.id)

    worker = command_worker(survivor)
    assert await worker.run_once() == 0  # its claim and lease are still valid
    await asyncio.sleep(1.3)  # claim, lease and heartbeat lapse
    assert await worker.run_once() == 1
    await worker.idle()
    retaken = await command_store.fetch(db, op, stop_id)
    assert (retaken.status, retaken.claimed_by, retaken.attempts) == (CommandStatus.DONE, survivor.conductor_id, 2)
    assert retaken.result["task"]["status"] == "cancelled"  # not "only live tasks can be stopped"
    assert not await runtime.is_alive(task.id)
    assert not await command_store.finish(db, stop_id, dead, result={})  # the dead one's late answer is fenced


BAD = [
    ("explode", "abcdef123456", {}, "verb", "must be one of"),
    ("stop", None, {}, "task_id", "6-32"),
    ("stop", "BAD ID", {}, "task_id", "6-32"),
    ("stop", "abcdef12\n", {}, "task_id", "6-32"),
    ("stop", "abcdef123456", {"force": True}, "args", "stop takes no arguments; got force"),
    ("logs", "abcdef123456", {"lines": 0}, "lines", "from 1 to"),
    ("logs", "abcdef123456", {"lines": "all"}, "lines", "whole number"),
    ("logs", "abcdef123456", {"from": -1, "lines": 10}, "from", "whole number from 0"),
    ("logs", "abcdef123456", {"from": "0", "lines": 10}, "from", "whole number from 0"),
    ("logs", "abcdef123456", {"from": 0, "lines": 10, "to": 5}, "args", "logs takes from, lines; got to"),
    ("spawn", "abcdef123456", {"request": {"description": "d", "repo": "/r"}}, "task_id", "empty for spawn"),
    ("spawn", None, {}, "args", "spawn takes one argument"),
    ("spawn", None, {"request": {"description": "d", "repo": "/r", "priority": 500}}, "priority", "100"),
    ("spawn", None, {"request": {"description": "d", "repo": "/r", "colour": "red"}}, "colour", "is not a known field"),
]


@pytest.mark.parametrize(("verb", "task_id", "args", "field", "rule"), BAD, ids=[f"{b[0]}-{b[3]}" for b in BAD])
async def test_bad_commands_are_refused_naming_the_field_and_leave_no_row(
        database: Database, verb: str, task_id: str | None, args: dict[str, Any], field: str, rule: str) -> None:
    op = operator()
    with pytest.raises(ValidationFailed) as refused:
        await command_store.submit(database, op, verb, task_id=task_id, args=args)
    assert refused.value.field == field and rule in refused.value.rule
    async with database.tenant(op) as conn:
        assert await conn.fetchval("SELECT count(*) FROM fleet_commands") == 0


async def test_the_table_refuses_what_validation_would_and_tenants_cannot_forge(
        database: Database, session_db_url: str) -> None:
    owner = await asyncpg.connect(session_db_url)
    try:
        with pytest.raises(asyncpg.CheckViolationError) as bad_verb:
            await owner.execute("INSERT INTO fleet_commands (operator_id, operator_tier, task_id, verb)"
                                " VALUES ('a', 'builder', 'abcdef12', 'explode')")
        assert bad_verb.value.constraint_name == "fleet_commands_verb_check"
        with pytest.raises(asyncpg.CheckViolationError) as no_task:
            await owner.execute("INSERT INTO fleet_commands (operator_id, operator_tier, verb)"
                                " VALUES ('a', 'builder', 'stop')")
        assert no_task.value.constraint_name == "fleet_commands_task_id_check"
    finally:
        await owner.close()
    plain = Operator(id=f"plain-{time.monotonic_ns()}", tier=Tier.SOVEREIGN)
    for forged in ((plain.id, True), ("someone-else", False)):  # an admin command, another's command
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with database.tenant(plain) as conn:
                await conn.execute("INSERT INTO fleet_commands (operator_id, operator_tier, operator_is_admin,"
                                   " verb, args) VALUES ($1, 'sovereign', $2, 'spawn', '{}')", *forged)


async def test_with_no_conductor_the_observer_says_so_and_withdraws_the_command(
        database: Database, db_settings: Any) -> None:
    op = operator()
    observer = Observer(db_settings, database, operator=op, timeout_s=0.5)
    try:
        with pytest.raises(NoConductorAnswered, match=r"no conductor answered within 0.5 s"):
            await observer.stop(op, "abcdef123456")
    finally:
        await observer.shutdown()
    async with database.tenant(op) as conn:
        row = await conn.fetchrow("SELECT status, error_kind FROM fleet_commands")
    assert dict(row) == {"status": "failed", "error_kind": "abandoned"}  # never runs late


async def test_observer_actions_wake_a_conductor_at_once_and_carry_its_errors_back(
        make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor()
    op = operator()
    worker = command_worker(conductor, wake_url=conductor.parts.db.app_url, poll_s=60.0)  # only LISTEN wakes it
    worker.start()
    observer = Observer(conductor.settings, conductor.parts.db, operator=op, timeout_s=15)
    try:
        result = await observer.spawn(op, SpawnRequest(description="observed\nFLEET-DEMO: sleep 30",
                                                       repo=str(git_repo)))
        assert result.created and result.task.status == S.RUNNING
        with pytest.raises(ValidationFailed) as refused:  # raised in the conductor, rebuilt here
            await observer.spawn(op, SpawnRequest(description="x", repo=str(git_repo / "nowhere")))
        assert refused.value.field == "repo" and "no such directory" in refused.value.rule
        deadline = time.monotonic() + 10
        while not any("[demo]" in line for line in await observer.logs(op, result.task.id)):
            assert time.monotonic() < deadline, "the agent's output never came back"
            await asyncio.sleep(0.1)
        stopped = await observer.stop(op, result.task.id)
        assert stopped.status == S.CANCELLED
        assert (await conductor.registry.get(result.task.id, operator=SYSTEM)).status == S.CANCELLED
        async with conductor.parts.db.tenant(op) as conn:  # read-only commands are removed once read
            assert await conn.fetchval("SELECT count(*) FROM fleet_commands WHERE verb = 'logs'") == 0
    finally:
        await observer.shutdown()
        await worker.stop()


async def test_an_observer_follows_a_flood_of_output_losing_and_repeating_no_line(
        make_conductor: Any, git_repo: Path) -> None:
    """The agent prints 5,000 lines in well under the follow's one-second poll: more than
    a 1,000-line read holds, so the follow reads on by cursor until it has them all."""
    conductor = await make_conductor()
    await conductor.start()  # its monitor ends the task when the agent exits
    op = operator()
    worker = command_worker(conductor, wake_url=conductor.parts.db.app_url)
    worker.start()
    observer = Observer(conductor.settings, conductor.parts.db, operator=op, timeout_s=15)
    try:
        spawned = await conductor.spawn(op, SpawnRequest(
            description="flood\nFLEET-DEMO: stall 2\nFLEET-DEMO: flood 5000", repo=str(git_repo)))
        task = spawned.task
        with pytest.raises(ValidationFailed) as refused:  # nothing read, nothing changed
            await conductor.logs_from(op, task.id, -1, 10)
        assert refused.value.field == "cursor" and "whole number from 0" in refused.value.rule
        followed = [line async for line in observer.follow_logs(op, task.id)]  # starts before the flood
        assert (await conductor.registry.get(task.id, operator=SYSTEM)).status not in (S.RUNNING, S.SPAWNING)
    finally:
        await observer.shutdown()
        await worker.stop()
    flood = [line for line in followed if "flood line" in line]
    assert len(flood) == 5000, f"{len(flood)} of 5000 flood lines"
    assert flood == [f"[demo] flood line {i} " + "x" * 60 for i in range(5000)]
    log = conductor.runtime_for(task.runtime).log_path(task.id)
    written = [line.rstrip("\r") for line in log.read_bytes().decode(errors="replace").split("\n")[:-1]]
    assert followed == written  # every line of the agent's log, once each, in order


async def test_a_capped_read_from_a_cursor_ends_its_cursor_after_the_last_line_it_returns(
        make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor()
    op = operator()
    task = await spawn_sleeper(conductor, op, git_repo)
    worker = command_worker(conductor, wake_url=conductor.parts.db.app_url)
    worker.start()
    observer = Observer(conductor.settings, conductor.parts.db, operator=op, timeout_s=15)
    try:
        _, cursor = await observer.logs_from(op, task.id, None, 10)  # the tail: its cursor is the end
        long_lines = [f"{i:04d} " + "é" * 3000 for i in range(400)]  # ~2.4 MB as JSON: many results
        with conductor.runtime_for(task.runtime).log_path(task.id).open("a", encoding="utf-8") as out:
            out.write("".join(line + "\n" for line in long_lines))
        read: list[str] = []
        sizes: list[int] = []
        while True:
            lines, cursor = await observer.logs_from(op, task.id, cursor, 1000)
            if not lines:
                break
            read.extend(lines)
            sizes.append(len(lines))
    finally:
        await observer.shutdown()
        await worker.stop()
    assert read == long_lines  # nothing skipped between capped results, nothing repeated
    assert len(sizes) > 5 and max(sizes) < 400  # each result was capped well below 1,000 lines


async def test_attach_from_an_observer_uses_a_local_session_or_says_where_to_run_it(
        make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor()
    op = operator()
    task = await spawn_sleeper(conductor, op, git_repo)
    here = Observer(conductor.settings, conductor.parts.db, operator=op)
    assert await here.attach_elsewhere(task) is None  # the session is on this machine's socket
    db = conductor.parts.db
    await leases.register(db, "buildbox7-1-abcdef01", "buildbox7", 1)
    await leases.claim(db, "buildbox7-1-abcdef01", 30, 10)
    elsewhere_settings = conductor.settings.model_copy(deep=True)
    elsewhere_settings.runtime.tmux_socket = "fleet-nowhere-here"
    hint = await Observer(elsewhere_settings, db, operator=op).attach_elsewhere(task)
    assert hint is not None and "on buildbox7" in hint
    assert f"tmux -L fleet-nowhere-here attach-session -t =fleet-{task.id}" in hint


async def test_an_unexpected_failure_is_recorded_as_internal_without_its_text(
        make_conductor: Any, caplog: pytest.LogCaptureFixture) -> None:
    conductor = await make_conductor()
    op = operator()

    async def broken_diff(*_args: Any) -> str:
        raise RuntimeError("upstream said token=sk-live-0123456789")

    conductor.diff = broken_diff  # type: ignore[method-assign]
    command_id = await command_store.submit(conductor.parts.db, op, "diff", task_id="abcdef123456")
    worker = command_worker(conductor)
    assert await worker.run_once() == 1
    await worker.idle()
    failed = await command_store.fetch(conductor.parts.db, op, command_id)
    assert (failed.status, failed.error_kind) == (CommandStatus.FAILED, "internal")
    assert "internal error" in failed.error and "sk-live" not in failed.error and failed.result is None
    assert any("failed inside the conductor" in r.getMessage() for r in caplog.records)  # the detail: in its log
