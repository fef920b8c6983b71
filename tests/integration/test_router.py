"""The event router on real PostgreSQL rows: precedence, waves, criticality, retries,
breakers, handoffs, the depth cap, the cache, validation of overrides and the seed data."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fleet_tui.domain.errors import PermissionDeniedError, ValidationFailed
from fleet_tui.engine.events.defaults import default_policy
from fleet_tui.engine.events.policy import Step
from fleet_tui.engine.events.adapters import StepContext
from fleet_tui.store import routes as route_store
from tests.integration.router_harness import Harness, make_harness, new_operator, step


@pytest.fixture
def h(database) -> Harness:
    return make_harness(database)


async def put_sequence(h: Harness, name: str, *steps: dict[str, Any]) -> None:
    await h.service.admin.upsert(h.operator, "sequence", {"name": name, "steps": list(steps)})


async def put_route(h: Harness, event: str, sequence: str, **match: Any) -> None:
    await h.service.admin.upsert(h.operator, "route", {"event_type": event, "sequence_name": sequence,
                                                       "match": match})


async def runs_of(h: Harness, root_id: int) -> list[dict[str, Any]]:
    async with h.service.router.db.system() as conn:
        return await route_store.list_runs(conn, parent_run_id=root_id)


async def test_seed_data_equals_the_code_fallback(h: Harness) -> None:
    seeded = await h.service.cache.policy(new_operator().id)
    assert h.service.cache.fallbacks == 0
    assert seeded.without_owner() == default_policy().without_owner()
    assert [s.name for s in seeded.sequence("review_pipeline").waves()[1]] == [
        "review_security", "review_logic", "review_architecture"]


async def test_operator_override_beats_the_platform_default(h: Harness) -> None:
    await put_sequence(h, "mine", step("only"))
    await put_route(h, "task.merged", "mine")
    other = new_operator()
    assert (await h.service.cache.policy(other.id)).route_for("task.merged").sequence_name == "notify_completed"
    result = await h.service.dispatch("task.merged", {"x": 1}, operator_id=h.op)
    assert result is not None and result.sequence == "mine" and result.status == "succeeded"
    assert h.recorder.calls == ["only"]
    shown = await h.service.admin.show(h.operator, "route", "task.merged")
    assert shown["source"] == "override" and shown["default"]["sequence_name"] == "notify_completed"


async def test_route_match_and_unknown_event_dispatch_nothing(h: Harness) -> None:
    await put_sequence(h, "gated", step("only"))
    await put_route(h, "task.pr_created", "gated", ci_status="passing")
    assert await h.service.dispatch("task.pr_created", {"ci_status": "pending"}, operator_id=h.op) is None
    assert await h.service.dispatch("no.such.event", {}, operator_id=h.op) is None
    assert h.recorder.calls == []
    assert (await h.service.dispatch("task.pr_created", {"ci_status": "passing"}, operator_id=h.op)).status \
        == "succeeded"


async def test_steps_of_a_wave_run_concurrently_and_waves_in_order(h: Harness) -> None:
    both_started = asyncio.Event()
    started: list[str] = []

    async def rendezvous(s: Step, ctx: StepContext) -> dict[str, Any]:
        # each step waits until the other has started: only possible if they run together
        started.append(s.name)
        if len(started) == 2:
            both_started.set()
        await asyncio.wait_for(both_started.wait(), 5)
        return {"name": s.name}

    h.service.adapters.register("rendezvous", rendezvous)
    await put_sequence(h, "waves", step("a", "rendezvous"), step("b", "rendezvous"), step("after", wave=1))
    result = await h.service.router.run("waves", {}, operator_id=h.op, event_type="test")
    assert result.status == "succeeded"
    assert started == ["a", "b"]
    assert result.steps["after"].output["seen"] == ["a", "b"]  # wave 1 saw both outputs of wave 0


async def test_critical_failure_aborts_retries_and_dead_letters(h: Harness) -> None:
    await put_sequence(h, "critical", step("fails", "test_boom", retries=2), step("peer"),
                       step("later", wave=1))
    result = await h.service.router.run("critical", {"task_id": "t123456"}, operator_id=h.op, event_type="test")
    assert result.status == "failed" and result.failed_step == "fails"
    assert result.steps["fails"].attempts == 3 and h.sleeps == [1.0, 2.0]
    assert result.steps["later"].status == "not_run" and "later" not in h.recorder.calls
    letters = await h.service.dlq.list(h.operator)
    assert [(d["id"], d["run_id"], d["step_name"], d["task_id"]) for d in letters] == [
        (result.dead_letter_id, result.run_id, "fails", "t123456")]
    assert "fails is broken" in letters[0]["error"]
    assert (letters[0]["next_attempt_at"] - h.wall.now).total_seconds() == 60


async def test_best_effort_failure_is_skipped(h: Harness) -> None:
    await put_sequence(h, "lenient", step("optional", "test_boom", criticality="best_effort"),
                       step("next", wave=1))
    result = await h.service.router.run("lenient", {}, operator_id=h.op, event_type="test")
    assert result.status == "succeeded" and result.dead_letter_id is None
    assert result.steps["optional"].status == "skipped" and result.steps["next"].status == "succeeded"
    assert await h.service.dlq.list(h.operator) == []


async def test_step_retry_recovers_with_1s_then_2s(h: Harness) -> None:
    await put_sequence(h, "flaky", step("wobbly", "test_flaky", retries=2, failures=2))
    result = await h.service.router.run("flaky", {}, operator_id=h.op, event_type="test")
    assert result.status == "succeeded" and result.steps["wobbly"].attempts == 3 and h.sleeps == [1.0, 2.0]


async def test_adapter_breaker_opens_after_5_failures_then_half_open_probe(h: Harness) -> None:
    await put_sequence(h, "breaks", step("fails", "test_boom", criticality="best_effort"))
    for _ in range(5):
        await h.service.router.run("breaks", {}, operator_id=h.op, event_type="test")
    assert len(h.recorder.calls) == 5
    state = {b["name"]: b["state"] for b in await h.service.breaker_states()}
    assert state["adapter:test_boom"] == "open"
    blocked = await h.service.router.run("breaks", {}, operator_id=h.op, event_type="test")
    assert len(h.recorder.calls) == 5  # not even called
    assert "circuit breaker adapter:test_boom is open" in blocked.steps["fails"].error
    h.clock.now += 30
    h.recorder.broken = False
    probe = await h.service.router.run("breaks", {}, operator_id=h.op, event_type="test")
    assert probe.steps["fails"].status == "succeeded" and len(h.recorder.calls) == 6
    assert h.service.breakers.get("adapter:test_boom").state == "closed"


async def test_handoff_fires_only_when_its_conditions_hold(h: Harness) -> None:
    await put_sequence(h, "source", step("judge", output={"confidence": 0.9, "intent": "fix", "risk_score": 3}))
    await put_sequence(h, "follow", step("followed"))
    await h.service.admin.upsert(h.operator, "handoff", {
        "name": "confident", "source_sequence": "source", "source_step": "judge", "target_sequence": "follow",
        "conditions": {"min_confidence": 0.8, "intent": "fix"},
        "context_map": {"why": "output.intent", "task_id": "task_id"}})
    await h.service.admin.upsert(h.operator, "handoff", {
        "name": "risky", "source_sequence": "source", "source_step": "judge", "target_sequence": "follow",
        "conditions": {"risk_score_above": 5}})
    result = await h.service.router.run("source", {"task_id": "abc123"}, operator_id=h.op, event_type="test")
    assert [(r.sequence, r.event_type, r.depth) for r in result.chain()] == [
        ("source", "test", 1), ("follow", "handoff:confident", 2)]
    child = result.follow_ups[0]
    assert child.steps["followed"].output["context"]["why"] == "fix"
    assert child.steps["followed"].output["context"]["task_id"] == "abc123"
    assert [r["sequence_name"] for r in await runs_of(h, result.run_id)] == ["follow"]


async def test_chains_stop_at_depth_5(h: Harness, database) -> None:
    # written around validation (which refuses cycles) to prove the runtime cap holds anyway
    async with database.system() as conn:
        await route_store.upsert(conn, "sequence", h.op, {"name": "loop", "description": "",
                                                          "steps": [step("again")]})
        await route_store.upsert(conn, "handoff", h.op, {
            "name": "forever", "source_sequence": "loop", "source_step": "again", "target_sequence": "loop",
            "conditions": {}, "context_map": {}, "enabled": True})
    result = await h.service.router.run("loop", {}, operator_id=h.op, event_type="test")
    chain = result.chain()
    assert [r.status for r in chain] == ["succeeded"] * 5 + ["stopped"]
    assert [r.depth for r in chain] == [1, 2, 3, 4, 5, 6]
    assert h.recorder.calls == ["again"] * 5


async def test_cache_serves_for_5_minutes_then_sees_another_process_write(h: Harness, database) -> None:
    await put_sequence(h, "first", step("one"))
    await put_sequence(h, "second", step("two"))
    await put_route(h, "custom.event", "first")
    assert (await h.service.dispatch("custom.event", {}, operator_id=h.op)).sequence == "first"
    elsewhere = make_harness(database, operator=h.operator)  # another process: its own cache
    await elsewhere.service.admin.upsert(h.operator, "route", {"event_type": "custom.event",
                                                               "sequence_name": "second"})
    h.clock.now += 299
    assert (await h.service.dispatch("custom.event", {}, operator_id=h.op)).sequence == "first"
    h.clock.now += 2
    assert (await h.service.dispatch("custom.event", {}, operator_id=h.op)).sequence == "second"


@pytest.mark.parametrize("kind,data,field", [
    ("sequence", {"name": "bad", "steps": [step("x", "no_such_adapter")]}, "steps.0.adapter"),
    ("sequence", {"name": "bad", "steps": [step("x", criticality="sometimes")]}, "sequence.steps.0.criticality"),
    ("sequence", {"name": "bad", "steps": [step("x", retries=3)]}, "sequence.steps.0.retries"),
    ("route", {"event_type": "e.x", "sequence_name": "missing"}, "sequence_name"),
    ("handoff", {"name": "h", "source_sequence": "review_pipeline", "source_step": "conclude_review",
                 "target_sequence": "notify_rejected", "conditions": {"min_confidence": "high"}},
     "handoff.conditions.min_confidence"),
    ("handoff", {"name": "h", "source_sequence": "review_pipeline", "source_step": "conclude_review",
                 "target_sequence": "notify_rejected", "conditions": {"sentiment": "happy"}},
     "handoff.conditions.sentiment"),
])
async def test_bad_overrides_are_refused_naming_the_field(h: Harness, kind: str, data: dict[str, Any],
                                                          field: str) -> None:
    before = await h.service.admin.list(h.operator, kind)
    with pytest.raises(ValidationFailed) as err:
        await h.service.admin.upsert(h.operator, kind, data)
    assert err.value.field == field, str(err.value)
    assert await h.service.admin.list(h.operator, kind) == before


async def test_handoff_chains_deeper_than_5_and_cycles_are_refused(h: Harness) -> None:
    for i in range(7):
        await put_sequence(h, f"s{i}", step("go"))

    async def link(i: int, j: int) -> None:
        await h.service.admin.upsert(h.operator, "handoff", {
            "name": f"h{i}", "source_sequence": f"s{i}", "source_step": "go", "target_sequence": f"s{j}"})

    for i in range(4):
        await link(i, i + 1)  # s0 -> s4: five sequences, allowed
    with pytest.raises(ValidationFailed) as deep:
        await link(4, 5)
    assert deep.value.field == "handoffs" and "capped at depth 5" in deep.value.rule
    with pytest.raises(ValidationFailed) as cycle:
        await link(4, 0)
    assert "forms a cycle" in cycle.value.rule
    names = {r["name"] for r in await h.service.admin.list(h.operator, "handoff") if r["operator_id"]}
    assert names == {"h0", "h1", "h2", "h3"}


async def test_delete_that_would_break_a_route_is_refused_and_changes_nothing(h: Harness) -> None:
    await put_sequence(h, "only_mine", step("x"))
    await put_route(h, "mine.event", "only_mine")
    with pytest.raises(ValidationFailed) as err:
        await h.service.admin.delete(h.operator, "sequence", "only_mine")
    assert "only_mine" in err.value.rule
    assert (await h.service.admin.show(h.operator, "sequence", "only_mine"))["source"] == "override"
    await h.service.admin.delete(h.operator, "route", "mine.event")
    await h.service.admin.delete(h.operator, "sequence", "only_mine")


async def test_platform_defaults_need_an_admin(h: Harness) -> None:
    with pytest.raises(PermissionDeniedError):
        await h.service.admin.upsert(h.operator, "route", {"event_type": "task.merged",
                                                           "sequence_name": "notify_completed"}, platform=True)


async def test_a_step_that_lost_the_lease_stops_the_run_without_a_dead_letter(h: Harness) -> None:
    from fleet_tui.domain.errors import LeaseLostError

    async def fenced(step: Step, ctx: StepContext) -> dict[str, Any]:
        h.recorder.calls.append(step.name)
        raise LeaseLostError("lease of task t1 is held by another conductor")

    h.service.adapters.register("test_fenced", fenced)
    await put_sequence(h, "fenced", step("first"), step("move", "test_fenced", wave=1, retries=2),
                       step("after", wave=2))
    await put_route(h, "task.failed", "fenced")
    result = await h.service.dispatch("task.failed", {"task_id": "t1"}, operator_id=h.op)
    assert result is not None and result.status == "stopped" and result.dead_letter_id is None
    assert "lease" in (result.error or "")
    assert h.recorder.calls == ["first", "move"]  # not retried, and the run went no further
    async with h.service.router.db.system() as conn:
        run = await conn.fetchrow("SELECT status, error FROM fleet_route_runs WHERE id = $1", result.run_id)
        letters = await conn.fetchval("SELECT count(*) FROM fleet_dead_letters WHERE run_id = $1", result.run_id)
    assert run["status"] == "stopped" and letters == 0
