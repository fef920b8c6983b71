"""Router: defaults per task type, override, skips, fallback, budget, Thompson convergence."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from fleet_tui.domain.models import TaskType
from fleet_tui.engine.kit.breaker import BreakerRegistry
from fleet_tui.engine.choice.reputation import CandidateStats
from fleet_tui.engine.choice.routing import (
    DEFAULT_ROUTES,
    FALLBACK_ROUTE,
    BudgetRefused,
    AgentRoute,
    breaker_name,
    choose_route,
    merge_routes,
    parse_route,
)


@pytest.mark.parametrize("task_type", list(TaskType))
def test_each_task_type_gets_its_default(task_type: TaskType) -> None:
    decision = choose_route(task_type=task_type, rng=random.Random(0))
    expected = DEFAULT_ROUTES[task_type]
    assert (decision.agent, decision.model) == (expected.agent, expected.model)
    assert decision.source == "default"
    assert str(task_type) in decision.reason


def test_defaults_follow_the_contract() -> None:
    assert DEFAULT_ROUTES[TaskType.BUG_FIX] == DEFAULT_ROUTES[TaskType.FEATURE]
    assert "opus" in DEFAULT_ROUTES[TaskType.FEATURE].model
    assert "haiku" in DEFAULT_ROUTES[TaskType.DOCS].model
    assert "gemini" in DEFAULT_ROUTES[TaskType.REVIEW].model
    assert FALLBACK_ROUTE.agent == "demo"


def test_override_wins_over_history_and_default() -> None:
    history = [CandidateStats("codex", "gpt-5-codex", 50, 0)]
    decision = choose_route(
        task_type="feature",
        override_agent="aider",
        override_model="some-model",
        history=history,
        rng=random.Random(0),
    )
    assert (decision.agent, decision.model, decision.source) == ("aider", "some-model", "override")
    assert "override" in decision.reason


def test_override_model_only_keeps_default_agent() -> None:
    decision = choose_route(task_type="bug_fix", override_model="claude-sonnet-4-5")
    assert (decision.agent, decision.model) == ("claude", "claude-sonnet-4-5")


def test_override_with_open_breaker_is_honoured_with_a_warning() -> None:
    breakers = BreakerRegistry(clock=lambda: 0.0)
    for _ in range(5):
        breakers.get(breaker_name("m", "a")).record_failure()
    decision = choose_route(task_type="docs", override_agent="a", override_model="m", breakers=breakers)
    assert decision.source == "override"
    assert "breaker open" in decision.reason


def test_unavailable_model_is_skipped() -> None:
    default = DEFAULT_ROUTES[TaskType.FEATURE]
    history = [
        CandidateStats(default.agent, default.model, 10, 0),
        CandidateStats("codex", "gpt-5-codex", 1, 5),
    ]
    decision = choose_route(
        task_type="feature",
        history=history,
        available=lambda agent, model: model != default.model,
        rng=random.Random(3),
    )
    assert decision.model == "gpt-5-codex"
    assert decision.source == "reputation"
    assert any("unavailable" in s for s in decision.skipped)


def test_open_breaker_is_skipped_then_half_open_admits_again() -> None:
    now = [0.0]
    breakers = BreakerRegistry(clock=lambda: now[0])
    default = DEFAULT_ROUTES[TaskType.BUG_FIX]
    for _ in range(5):
        breakers.get(breaker_name(default.model, default.agent)).record_failure()
    decision = choose_route(task_type="bug_fix", breakers=breakers)
    assert decision.source == "fallback"
    assert decision.agent == FALLBACK_ROUTE.agent
    assert "breaker open" in decision.reason
    now[0] = 31.0
    assert choose_route(task_type="bug_fix", breakers=breakers).source == "default"


def test_fallback_when_all_are_out() -> None:
    decision = choose_route(
        task_type="refactor",
        history=[CandidateStats("x", "y", 3, 1)],
        available=lambda agent, model: agent == FALLBACK_ROUTE.agent,
    )
    assert decision.source == "fallback"
    assert (decision.agent, decision.model) == (FALLBACK_ROUTE.agent, FALLBACK_ROUTE.model)
    assert "x/y: unavailable" in decision.reason


def test_fallback_used_as_last_resort_even_if_unavailable() -> None:
    decision = choose_route(task_type="docs", available=lambda a, m: False)
    assert decision.source == "fallback"
    assert "last resort" in decision.reason


def test_budget_refusal_of_everything_raises() -> None:
    with pytest.raises(BudgetRefused) as info:
        choose_route(task_type="feature", budget_ok=lambda a, m: False)
    assert info.value.task_type == "feature"
    assert FALLBACK_ROUTE.label() in info.value.refused


def test_budget_refusal_of_override_raises() -> None:
    with pytest.raises(BudgetRefused):
        choose_route(task_type="feature", override_agent="claude", budget_ok=lambda a, m: a != "claude")


def test_budget_refusing_paid_models_falls_back_to_free_demo() -> None:
    decision = choose_route(task_type="feature", budget_ok=lambda a, m: a == "demo")
    assert decision.source == "fallback"
    assert "over budget" in decision.reason


def test_thompson_converges_to_the_better_pair() -> None:
    good = CandidateStats("claude", "claude-opus-4-1", 40, 10)  # the default, 80%
    poor = CandidateStats("codex", "gpt-5-codex", 15, 35)  # 30%
    rng = random.Random(1234)
    picks = Counter(
        choose_route(task_type="feature", history=[poor, good], rng=rng).agent for _ in range(500)
    )
    assert picks["claude"] >= 495  # the posteriors barely overlap
    assert picks["claude"] + picks["codex"] == 500


def test_thompson_explores_when_the_evidence_is_thin() -> None:
    a = CandidateStats("claude", "claude-opus-4-1", 2, 1)
    b = CandidateStats("codex", "gpt-5-codex", 1, 1)
    rng = random.Random(99)
    picks = Counter(choose_route(task_type="feature", history=[a, b], rng=rng).agent for _ in range(400))
    assert picks["claude"] > picks["codex"] > 40  # the better one leads, the other still gets tried


def test_reputation_decision_carries_samples_and_reason() -> None:
    decision = choose_route(
        task_type="refactor",
        history=[CandidateStats("aider", "m", 9, 1)],
        rng=random.Random(5),
    )
    assert decision.source == "reputation"
    assert set(decision.samples) == {"aider/m", "codex/gpt-5-codex"}
    assert "drew" in decision.reason
    assert decision.to_dict()["source"] == "reputation"


def test_settings_routes_merge_over_defaults() -> None:
    merged = merge_routes({"docs": "aider:cheap-model", TaskType.REVIEW: "gemini"})
    assert merged[TaskType.DOCS] == AgentRoute("aider", "cheap-model")
    assert merged[TaskType.REVIEW] == AgentRoute("gemini", None)
    assert merged[TaskType.FEATURE] == DEFAULT_ROUTES[TaskType.FEATURE]
    assert parse_route("codex:openai/gpt-5") == AgentRoute("codex", "openai/gpt-5")
    with pytest.raises(ValueError):
        parse_route(":model")
    with pytest.raises(ValueError):
        merge_routes({"poetry": "claude"})


def test_default_without_model_is_sampled_under_its_agent_name() -> None:
    defaults = merge_routes({"review": "gemini"})
    decision = choose_route(
        task_type="review",
        defaults=defaults,
        history=[CandidateStats("gemini", "gemini", 30, 0), CandidateStats("x", "y", 0, 30)],
        rng=random.Random(2),
    )
    assert (decision.agent, decision.model, decision.source) == ("gemini", None, "reputation")
