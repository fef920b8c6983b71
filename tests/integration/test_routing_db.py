"""Routing against a real fleet: defaults per task type, override, availability, model
breakers, fallback, the credit budget (from costs the demo agent reports) and reputation
from the registry's own rows."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from fleet_tui.domain.models import SpawnRequest, TaskType
from fleet_tui.domain.status import TaskStatus
from fleet_tui.engine.choice.agent_choice import record_route, reputation_of
from fleet_tui.domain.models import SYSTEM
from fleet_tui.engine.conductor import Conductor
from fleet_tui.domain.errors import BudgetRefused
from fleet_tui.store import executions
from fleet_tui.store import reputation as history
from tests.e2e.test_conductor_flow import wait_for
from tests.fixtures.engine import operator

S = TaskStatus
# The vendor CLIs are not installed here: run the demo agent under their profiles' names
# (their model lists stay), so that they count as available.
AS_DEMO = ["{python}", "-m", "fleet_tui.infra.demo_agent", "{model_args}"]
INSTALLED = {name: {"command": AS_DEMO} for name in ("claude", "codex", "gemini")}


def request(task_type: TaskType, repo: Path, **fields: Any) -> SpawnRequest:
    return SpawnRequest(description=f"a {task_type} task", repo=str(repo), task_type=task_type, **fields)


@pytest.mark.parametrize(("task_type", "agent", "model"), [
    (TaskType.BUG_FIX, "claude", "opus"),
    (TaskType.FEATURE, "claude", "opus"),
    (TaskType.REFACTOR, "codex", "gpt-5-codex"),
    (TaskType.REVIEW, "gemini", "gemini-2.5-pro"),
    (TaskType.DOCS, "claude", "haiku"),
])
async def test_each_task_type_gets_its_default(make_conductor: Any, git_repo: Path, task_type: TaskType,
                                               agent: str, model: str) -> None:
    conductor = await make_conductor(agents__profiles=INSTALLED)
    decision = await conductor.parts.agents.route(operator(), request(task_type, git_repo))
    assert (decision.agent, decision.model, decision.source) == (agent, model, "default")
    assert decision.reason == f"default for {task_type}: {agent}/{model}"


async def test_configured_routes_replace_the_defaults(make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor(agents__profiles=INSTALLED, agents__routes={TaskType.DOCS: "codex:o4-mini"})
    decision = await conductor.parts.agents.route(operator(), request(TaskType.DOCS, git_repo))
    assert (decision.agent, decision.model) == ("codex", "o4-mini")


async def test_an_explicit_override_wins(make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor(agents__profiles=INSTALLED)
    decision = await conductor.parts.agents.route(
        operator(), request(TaskType.BUG_FIX, git_repo, agent="demo", model="demo-large"))
    assert (decision.agent, decision.model, decision.source) == ("demo", "demo-large", "override")
    assert decision.reason == "operator override: demo/demo-large"
    # the spawn path (no I/O) makes the same call
    assert conductor.parts.agents.choose(request(TaskType.BUG_FIX, git_repo, agent="demo")) == ("demo", "demo-small")


async def test_unavailable_agents_and_models_are_skipped(make_conductor: Any, git_repo: Path) -> None:
    # claude is not installed here; a route naming a model codex does not list is out too
    conductor = await make_conductor(agents__profiles={"codex": {"command": AS_DEMO}},
                                     agents__routes={TaskType.REFACTOR: "codex:no-such-model"})
    bug = await conductor.parts.agents.route(operator(), request(TaskType.BUG_FIX, git_repo))
    assert bug.source == "fallback" and bug.agent == "demo"
    assert any(s.startswith("claude/opus: ") for s in bug.skipped), bug.skipped  # not installed, or no key
    refactor = await conductor.parts.agents.route(operator(), request(TaskType.REFACTOR, git_repo))
    assert "codex/no-such-model: unavailable" in refactor.skipped and refactor.agent == "demo"


async def test_an_open_breaker_skips_its_model(make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor(agents__profiles=INSTALLED)
    breaker = conductor.parts.breakers.get("model:opus")
    for _ in range(breaker.failure_threshold):
        breaker.record_failure()
    decision = await conductor.parts.agents.route(operator(), request(TaskType.FEATURE, git_repo))
    assert "claude/opus: breaker open" in decision.skipped
    assert (decision.agent, decision.source) == ("demo", "fallback")
    docs = await conductor.parts.agents.route(operator(), request(TaskType.DOCS, git_repo))
    assert (docs.agent, docs.model, docs.source) == ("claude", "haiku", "default")  # other models unaffected


async def test_the_fallback_when_every_option_is_out(make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor()  # no vendor CLI installed
    for task_type in TaskType:
        decision = await conductor.parts.agents.route(operator(), request(task_type, git_repo))
        assert (decision.agent, decision.model, decision.source) == ("demo", "demo-small", "fallback")
        assert decision.reason.startswith("fallback demo: every other option is out")


async def run_to(conductor: Conductor, op: Any, repo: Path, description: str, status: S, **fields: Any) -> str:
    spawned = await conductor.spawn(op, SpawnRequest(description=description, repo=str(repo), **fields))
    task = await wait_for(conductor, spawned.task.id, lambda t: t.status == status, 45)
    return task.id


async def test_usage_is_recorded_and_the_budget_refuses_with_a_notification(
        make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor()
    await conductor.start()
    op = operator()
    task_id = await run_to(conductor, op, git_repo, "cost me something", S.PR_CREATED)
    runs = await executions.list_for_task(conductor.parts.db, task_id, operator=None)
    assert runs[0]["cost_usd"] is not None and runs[0]["input_tokens"] > 100  # parsed from the demo's output
    spent = await history.spent_usd(conductor.parts.db, operator_id=op.id)
    assert spent == pytest.approx(float(runs[0]["cost_usd"]))

    await history.set_credit_budget(conductor.parts.db, operator_id=op.id, usd=spent * 10)
    allowed = await conductor.parts.agents.route(op, request(TaskType.FEATURE, git_repo))
    assert allowed.agent == "demo"  # within the budget

    await history.set_credit_budget(conductor.parts.db, operator_id=op.id, usd=spent * 0.5)
    with pytest.raises(BudgetRefused, match="budget refuses") as refused:
        await conductor.parts.agents.route(op, request(TaskType.FEATURE, git_repo))
    assert "demo" in refused.value.refused
    async with conductor.parts.db.system() as conn:
        rows = await conn.fetch(
            "SELECT task_id, type, payload FROM fleet_notifications WHERE operator_id = $1 AND type = $2",
            op.id, "budget_exceeded")
    assert len(rows) == 1 and rows[0]["task_id"] is None
    assert "spent $" in rows[0]["payload"]["summary"]
    other = operator()  # another operator's budget is untouched
    assert (await conductor.parts.agents.route(other, request(TaskType.FEATURE, git_repo))).agent == "demo"


async def test_a_relaunched_attempt_adds_its_usage_to_what_the_first_run_spent(
        make_conductor: Any, git_repo: Path) -> None:
    """An answer or a granted permission resumes the same attempt: its row must keep the
    first run's tokens and cost (budgets are summed from these rows), not overwrite them."""
    conductor = await make_conductor()
    await conductor.start()
    op = operator()
    task_id = await run_to(conductor, op, git_repo, "cost me twice", S.PR_CREATED)
    db = conductor.parts.db
    [first] = await executions.list_for_task(db, task_id, operator=None)
    spent = await history.spent_usd(db, operator_id=op.id)
    task = await conductor.registry.get(task_id, operator=None)
    await executions.start(db, task, prompt="the operator's answer")  # the resumed run
    await executions.finish(db, task_id, attempt=first["attempt"], exit_code=0, input_tokens=7,
                            output_tokens=3, cost_usd=0.5, total_tokens=10)
    [again] = await executions.list_for_task(db, task_id, operator=None)
    assert again["input_tokens"] == first["input_tokens"] + 7
    assert again["output_tokens"] == first["output_tokens"] + 3
    assert float(again["cost_usd"]) == pytest.approx(float(first["cost_usd"]) + 0.5)
    assert await history.spent_usd(db, operator_id=op.id) == pytest.approx(spent + 0.5)


async def test_reputation_comes_from_the_registry_rows(make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor()
    await conductor.start()
    op = operator()
    good = await run_to(conductor, op, git_repo, "good one", S.PR_CREATED)
    task = await conductor.registry.get(good, operator=SYSTEM)
    task = await conductor.move(task, S.REVIEWING, actor="test")
    await conductor.move(task, S.READY, actor="test")
    await run_to(conductor, op, git_repo, "bad one\nFLEET-DEMO: fail always", S.ABANDONED, max_retries=1)

    rep = await reputation_of(conductor.parts.agents, agent="demo", model="demo-small", task_type="feature")
    # 1 success, 2 failed attempts (the retried one and the last): Beta(2, 3)
    assert rep.to_dict() == {"score": 0.4, "confidence": rep.confidence, "n": 3}
    assert rep.confidence is not None and 0 < rep.confidence < 1
    unknown = await reputation_of(conductor.parts.agents, agent="demo", model="demo-large", task_type="feature")
    assert unknown.to_dict() == {"score": 0.5, "confidence": None, "n": 0}

    conductor.parts.agents.rng = random.Random(7)
    decision = await conductor.parts.agents.route(op, request(TaskType.FEATURE, git_repo))
    assert decision.source == "reputation" and decision.reason.startswith("reputation: demo/demo-small drew")
    assert "demo/demo-small" in decision.samples and "(1 ok / 2 failed on feature)" in decision.reason
    # the decision is kept with its reason
    ready = await conductor.registry.get(good, operator=SYSTEM)
    recorded = await record_route(conductor.ledger, ready, decision)
    assert recorded.metadata["route"]["reason"] == decision.reason
