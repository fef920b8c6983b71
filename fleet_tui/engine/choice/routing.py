"""Which agent profile and model run a task: override, then reputation, then default, then
fallback. Every option is gated by availability, the model's circuit breaker and the
operator's credit budget; every decision says why it was made."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Literal
from collections.abc import Callable, Mapping, Sequence

from fleet_tui.domain.errors import BudgetRefused
from fleet_tui.domain.models import TaskType
from fleet_tui.engine.kit.breaker import BreakerRegistry
from fleet_tui.engine.choice.reputation import CandidateStats, thompson_sample

RouteSource = Literal["override", "reputation", "default", "fallback"]
Gate = Callable[[str, str | None], bool]
# An availability gate may say why not: True usable; False or a reason (str) not usable.
Availability = Callable[[str, str | None], "bool | str"]


@dataclass(frozen=True)
class AgentRoute:
    agent: str
    model: str | None = None  # None: the profile's own default model

    def label(self) -> str:
        return f"{self.agent}/{self.model}" if self.model else self.agent


# Strongest coding agent for bugs and features, a fast one for refactors, a long-context
# model for reviews, a cheap one for docs. Settings (agents.routes) are merged over these.
DEFAULT_ROUTES: dict[TaskType, AgentRoute] = {
    TaskType.BUG_FIX: AgentRoute("claude", "claude-opus-4-1"),
    TaskType.FEATURE: AgentRoute("claude", "claude-opus-4-1"),
    TaskType.REFACTOR: AgentRoute("codex", "gpt-5-codex"),
    TaskType.REVIEW: AgentRoute("gemini", "gemini-2.5-pro"),
    TaskType.DOCS: AgentRoute("claude", "claude-haiku-4-5"),
}
FALLBACK_ROUTE = AgentRoute("demo", None)


@dataclass(frozen=True)
class RouteDecision:
    agent: str
    model: str | None
    reason: str
    source: RouteSource
    samples: dict[str, float] = field(default_factory=dict)  # "agent/model" -> Thompson draw
    skipped: list[str] = field(default_factory=list)  # "agent/model: why"

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "model": self.model,
            "reason": self.reason,
            "source": self.source,
            "samples": dict(self.samples),
            "skipped": list(self.skipped),
        }


def parse_route(text: str) -> AgentRoute:
    """Settings form: "agent" or "agent:model" (agent names never contain ':')."""
    agent, _, model = text.strip().partition(":")
    if not agent:
        raise ValueError(f"route {text!r}: agent name is empty")
    return AgentRoute(agent, model or None)


def merge_routes(
    overrides: Mapping[TaskType, str | AgentRoute] | Mapping[str, str | AgentRoute] | None,
    defaults: Mapping[TaskType, AgentRoute] = DEFAULT_ROUTES,
) -> dict[TaskType, AgentRoute]:
    merged = dict(defaults)
    for task_type, value in (overrides or {}).items():
        merged[TaskType(task_type)] = value if isinstance(value, AgentRoute) else parse_route(value)
    return merged


def breaker_name(model: str | None, agent: str) -> str:
    # Breakers are per model; a profile without an explicit model is its own "model".
    return f"model:{model}" if model else f"model:{agent}"


def _why_out(
    route: AgentRoute,
    available: Availability | None,
    breakers: BreakerRegistry | None,
) -> str | None:
    """The reason this route cannot run now (budget aside), or None when it can."""
    verdict = True if available is None else available(route.agent, route.model)
    if isinstance(verdict, str) or not verdict:
        return verdict or "unavailable"
    if breakers is not None:
        breaker = breakers.peek(breaker_name(route.model, route.agent))
        if breaker is not None and not breaker.would_allow():
            return f"breaker {breaker.state}"
    return None


def choose_route(
    *,
    task_type: TaskType | str,
    override_agent: str | None = None,
    override_model: str | None = None,
    history: Sequence[CandidateStats] = (),
    defaults: Mapping[TaskType, AgentRoute] = DEFAULT_ROUTES,
    fallback: AgentRoute = FALLBACK_ROUTE,
    available: Availability | None = None,
    breakers: BreakerRegistry | None = None,
    budget_ok: Gate | None = None,
    rng: random.Random | None = None,
) -> RouteDecision:
    task_type = TaskType(task_type)
    rng = rng or random.Random()
    default = defaults.get(task_type, fallback)
    skipped: list[str] = []
    budget_refused: list[str] = []

    def budget_allows(route: AgentRoute) -> bool:
        if budget_ok is None or budget_ok(route.agent, route.model):
            return True
        _note(budget_refused, route.label())
        _note(skipped, f"{route.label()}: over budget")
        return False

    def usable(route: AgentRoute) -> bool:
        why = _why_out(route, available, breakers)
        if why is not None:
            _note(skipped, f"{route.label()}: {why}")
            return False
        return budget_allows(route)

    # 1. An explicit override is the operator's call: honoured even when its breaker is
    #    open (the reason says so), but never past the budget.
    if override_agent or override_model:
        agent = override_agent or default.agent
        model = override_model or (default.model if agent == default.agent else None)
        route = AgentRoute(agent, model)
        if not budget_allows(route):
            raise BudgetRefused(
                f"budget refuses the requested {route.label()} for {task_type} tasks",
                task_type=str(task_type),
                refused=budget_refused,
            )
        warning = _why_out(route, available, breakers)
        reason = f"operator override: {route.label()}" + (f" (warning: {warning})" if warning else "")
        return RouteDecision(route.agent, route.model, reason, "override", skipped=skipped)

    # 2. Reputation: Thompson sampling over the pairs with history, the default included
    #    (with its own history, possibly none) so that it keeps being explored.
    by_key: dict[tuple[str, str], CandidateStats] = {}
    for cand in history:
        if cand.n > 0:
            by_key.setdefault(cand.key, cand)
    if by_key:
        default_key = (default.agent, default.model or default.agent)
        by_key.setdefault(default_key, CandidateStats(default.agent, default.model or default.agent))
        eligible = [c for c in by_key.values() if usable(AgentRoute(c.agent, _model_of(c, default)))]
        winner, draws = thompson_sample(eligible, rng)
        if winner is not None:
            samples = {f"{a}/{m}": round(v, 4) for (a, m), v in draws.items()}
            reason = (
                f"reputation: {winner.agent}/{winner.model} drew {draws[winner.key]:.3f} "
                f"({winner.successes} ok / {winner.failures} failed on {task_type}) "
                f"among {len(eligible)} candidate(s)"
            )
            return RouteDecision(
                winner.agent, _model_of(winner, default), reason, "reputation", samples, skipped
            )

    # 3. The task type's default.
    if usable(default):
        reason = f"default for {task_type}: {default.label()}"
        if skipped:
            reason += f" (skipped {'; '.join(skipped)})"
        return RouteDecision(default.agent, default.model, reason, "default", skipped=skipped)

    # 4. The fallback: the last resort, unless the budget refuses it too.
    if not budget_allows(fallback):
        raise BudgetRefused(
            f"budget refuses every option for {task_type} tasks: {', '.join(budget_refused)}",
            task_type=str(task_type),
            refused=budget_refused,
        )
    why = _why_out(fallback, available, breakers)
    if why is not None and budget_refused:
        raise BudgetRefused(
            f"budget refuses {', '.join(budget_refused)} and fallback {fallback.label()} is {why}",
            task_type=str(task_type),
            refused=budget_refused,
        )
    reason = f"fallback {fallback.label()}: every other option is out ({'; '.join(skipped)})"
    if why is not None:
        reason += f"; fallback itself is {why}, used as last resort"
    return RouteDecision(fallback.agent, fallback.model, reason, "fallback", skipped=skipped)


def _note(items: list[str], item: str) -> None:
    # A route may be checked twice (as a reputation candidate, then as the default).
    if item not in items:
        items.append(item)


def _model_of(cand: CandidateStats, default: AgentRoute) -> str | None:
    # The default with no explicit model is keyed by its agent name; map it back to None.
    if cand.agent == default.agent and default.model is None and cand.model == default.agent:
        return None
    return cand.model
