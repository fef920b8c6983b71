"""Routing against this fleet: the pure choose_route (choice/routing.py) fed with the registry's
history, the installed agents, the model breakers and the operator's credit budget.

Defaults per task type name models the shipped profiles know (routing.DEFAULT_ROUTES uses
vendor model ids that the CLIs' profiles do not list); settings.agents.routes override
them ("agent" or "agent:model"); the fallback is settings.agents.default_profile."""

from __future__ import annotations

import dataclasses
import os
import random
import shutil
from dataclasses import dataclass, field
from datetime import datetime, UTC
from typing import TYPE_CHECKING
from collections.abc import Mapping

from fleet_tui.domain.errors import ValidationFailed
from fleet_tui.domain.models import Operator, SpawnRequest, TaskPatch, TaskRecord, TaskType
from fleet_tui.engine.choice.budget import BudgetGate, load_budget_gate
from fleet_tui.engine.choice.reputation import CandidateStats, Reputation, reputation
from fleet_tui.domain.errors import BudgetRefused
from fleet_tui.engine.choice.routing import AgentRoute, RouteDecision, choose_route, merge_routes, parse_route
from fleet_tui.infra.agent_probe import credentials_present

if TYPE_CHECKING:
    from fleet_tui.config import Settings
    from fleet_tui.engine.kit.breaker import BreakerRegistry
    from fleet_tui.engine.ledger.task_ledger import TaskLedger
    from fleet_tui.engine.ports import NotifyOperator, ProfileOf, RateGate, RoutingInputs
    from fleet_tui.infra.agents import AgentProfile
    from fleet_tui.store.db import Database

PROFILE_DEFAULT_ROUTES: dict[TaskType, AgentRoute] = {
    TaskType.BUG_FIX: AgentRoute("claude", "opus"),  # the strongest coding agent
    TaskType.FEATURE: AgentRoute("claude", "opus"),
    TaskType.REFACTOR: AgentRoute("codex", "gpt-5-codex"),  # a fast coding agent
    TaskType.REVIEW: AgentRoute("gemini", "gemini-2.5-pro"),  # long context
    TaskType.DOCS: AgentRoute("claude", "haiku"),  # cheap
}


def profile_named(profiles: Mapping[str, AgentProfile], default: str, name: str | None) -> AgentProfile:
    """The profile of that name (None: the default one); ValidationFailed naming the known ones."""
    chosen = name or default
    if chosen not in profiles:
        known = ", ".join(sorted(profiles))
        raise ValidationFailed("agent", f"unknown agent profile {chosen!r}; known: {known}")
    return profiles[chosen]


@dataclass
class AgentChooser:
    """Chooses the agent and model of a spawn request against this fleet (satisfies
    ports.RoutingInputs): what it reads, and the usage pauses and opt-outs the last full
    decision read (a decision without I/O, e.g. a form's check, honours those)."""

    settings: Settings
    db: Database
    profiles: dict[str, AgentProfile]
    breakers: BreakerRegistry  # per model ("model:<name>")
    profile: ProfileOf
    notify_operator: NotifyOperator  # a budget's refusal
    rng: random.Random = field(default_factory=random.Random)  # Thompson draws; seeded in tests
    # agent -> when its usage limit resets, as the last routing decision read it
    usage_pauses: dict[str, datetime] = field(default_factory=dict)
    # operators who opted out of those pauses, as the last decision read them
    # (choice/preferences.py); None until then: the settings file's list
    usage_opt_outs: frozenset[str] | None = None

    def choose(self, request: SpawnRequest) -> tuple[str, str | None]:
        """Override, else the task type's default, else the fallback; unavailable agents and
        open model breakers skipped. No I/O: reputation and budget need route()."""
        decision = resolved(self, decide_without_history(self, request))
        return decision.agent, decision.model

    async def route(self, operator: Operator, request: SpawnRequest, *,
                    rate: RateGate | None = None) -> RouteDecision:
        """The full routing decision: override, reputation (Thompson sampling over the
        fleet's history), default, fallback, gated by availability, breakers and the
        operator's credit budget. Raises BudgetRefused (after a budget_exceeded notification).
        rate: the operator's rate limit, taken with the routing reads."""
        return await decide(self, operator, request, rate=rate)


def routes_for(inputs: RoutingInputs) -> dict[TaskType, AgentRoute]:
    return merge_routes(inputs.settings.agents.routes, PROFILE_DEFAULT_ROUTES)


def fallback_for(inputs: RoutingInputs) -> AgentRoute:
    return AgentRoute(inputs.settings.agents.default_profile, None)


def configured_agents(settings: Settings) -> set[str]:
    """Agents the operator named in settings: the fallback profile, a task type's route, or
    a profile of their own (agents.profiles). Shipped default routes do not count."""
    named = {settings.agents.default_profile, *settings.agents.profiles}
    return named | {parse_route(text).agent for text in settings.agents.routes.values()}


def why_not_ready(settings: Settings, profile: AgentProfile, env: Mapping[str, str] | None = None) -> str | None:
    """Why routing may not send work to this profile unasked, or None when it may: its CLI
    must be installed, and it must be configured or have credentials (an API key variable
    or the CLI's own login). A CLI on PATH alone is not enough: without credentials every
    attempt would fail, so a newcomer's task goes to the demo agent instead."""
    program = profile.command[0]
    if program == "{python}":
        return None  # built in (the demo agent): nothing to install, no key
    if shutil.which(program) is None:
        return f"{program} is not installed"
    if profile.name in configured_agents(settings) or credentials_present(profile, os.environ if env is None else env):
        return None
    return "no credentials found (an API key variable or the CLI's login) and not configured"


def demo_notice(inputs: RoutingInputs, decision: RouteDecision) -> str | None:
    """Said in the spawn result when the built-in demo agent takes a task only because no
    real agent could: which ones were passed over and why, and how to change that."""
    if decision.source != "fallback" or inputs.profile(decision.agent).command[0] != "{python}":
        return None
    why = "; ".join(decision.skipped) or "no real agent is set up"
    return (f"the demo agent runs this task ({why}). To use a real agent, give it credentials "
            f"(its API key variable or its CLI's login), name it in fleet.toml (agents.routes), "
            f"or choose it explicitly")


def is_available(inputs: RoutingInputs, agent: str, model: str | None,
                 paused: Mapping[str, datetime] | None = None) -> bool | str:
    """True when routing may use this agent and model; else False or the reason why not.
    paused: agents whose usage limit has not reset yet (usage_pauses), with when it does."""
    profile = inputs.profiles.get(agent)
    if profile is None:
        return False
    if model is not None and profile.models and model not in profile.models:
        return False
    return why_not_ready(inputs.settings, profile) or paused_reason(paused or {}, agent) or True


def paused_reason(paused: Mapping[str, datetime], agent: str, now: datetime | None = None) -> str | None:
    """Why routing passes over an agent whose usage limit has not reset, or None."""
    until = paused.get(agent)
    now = now or datetime.now(UTC)
    if until is None or until <= now:
        return None
    return f"usage limited until {until.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def pauses_for(inputs: RoutingInputs, operator_id: str | None) -> dict[str, datetime]:
    """The usage pauses routing honours for this operator (none for one who opted out)."""
    opted_out = inputs.usage_opt_outs
    if opted_out is None:
        opted_out = frozenset(inputs.settings.retry.usage_limit_opt_out)
    if operator_id is not None and operator_id in opted_out:
        return {}
    return dict(inputs.usage_pauses)


def decide_without_history(inputs: RoutingInputs, request: SpawnRequest,
                           operator_id: str | None = None) -> RouteDecision:
    """Override, default, fallback; availability, breakers and the usage pauses last read (no I/O)."""
    paused = pauses_for(inputs, operator_id)
    return choose_route(
        task_type=request.task_type, override_agent=request.agent, override_model=request.model,
        defaults=routes_for(inputs), fallback=fallback_for(inputs),
        available=lambda a, m: is_available(inputs, a, m, paused), breakers=inputs.breakers, rng=inputs.rng)


async def decide(inputs: RoutingInputs, operator: Operator, request: SpawnRequest,
                 gate: BudgetGate | None = None, rate: RateGate | None = None) -> RouteDecision:
    """The full decision, its model resolved against the profile. A budget refusal records
    a budget_exceeded notification and raises BudgetRefused. rate (a RateLimiter): the
    request is taken from the operator's rate limit in the same transaction as the reads,
    and one over it is refused (PermissionDeniedError) before anything is decided."""
    from fleet_tui.engine.choice.preferences import usage_limit_opt_outs
    from fleet_tui.store import reputation as history

    # every read on the spawn's path in one scope: one acquire, one transaction, no more round
    # trips than reads (each read its own scope cost four: begin, settings, read, commit)
    async with inputs.db.system(kind="read") as conn:
        if gate is None:
            gate = await load_budget_gate(inputs.db, inputs.settings.budget, operator.id, conn)
        await inputs.breakers.refresh(conn)  # open anywhere in the fleet: skipped here too
        inputs.usage_pauses = await history.usage_pauses(conn)  # limited anywhere in the fleet
        inputs.usage_opt_outs = await usage_limit_opt_outs(conn, inputs.settings.retry.usage_limit_opt_out)  # chosen at run time, anywhere
        counts = await history.route_counts(conn, task_type=str(request.task_type))
        wait_s = 0.0 if rate is None else await rate.hit(conn, operator.id)  # last: its row lock ends at commit
    if rate is not None:  # refused here, never as a budget refusal (no budget_exceeded notification)
        rate.refuse_over(operator.id, wait_s)
    paused = pauses_for(inputs, operator.id)
    try:
        decision = choose_route(
            task_type=request.task_type, override_agent=request.agent, override_model=request.model,
            history=[CandidateStats(c.agent, c.model, c.successes, c.failures) for c in counts],
            defaults=routes_for(inputs), fallback=fallback_for(inputs),
            available=lambda a, m: is_available(inputs, a, m, paused), breakers=inputs.breakers,
            budget_ok=gate.allows, rng=inputs.rng)
    except BudgetRefused as refused:
        await inputs.notify_operator(operator.id, "budget_exceeded", f"{refused} ({gate.describe()})")
        raise
    return resolved(inputs, decision)


def resolved(inputs: RoutingInputs, decision: RouteDecision) -> RouteDecision:
    from fleet_tui.infra.agents import resolve_model

    profile = inputs.profile(decision.agent)
    try:
        model = resolve_model(profile, decision.model)
    except ValidationFailed:
        if decision.source == "override":
            raise
        model = profile.default_model  # a configured route naming a model the profile lacks
    return dataclasses.replace(decision, model=model)


async def reputation_of(inputs: RoutingInputs, *, agent: str, model: str | None, task_type: str) -> Reputation:
    """{score, confidence, n} of one pairing from the fleet's own history."""
    from fleet_tui.store import reputation as history

    counts = await history.one_route_counts(inputs.db, agent=agent, model=model, task_type=task_type)
    return reputation(counts.successes, counts.failures)


async def record_route(ledger: TaskLedger, task: TaskRecord, decision: RouteDecision) -> TaskRecord:
    """Every decision keeps its reason: an audit row and task.metadata['route'] (a spawn's
    admission writes both itself; this is for a decision made on a task that exists)."""
    await ledger.audit(task, "route_chosen", decision.to_dict())
    return await ledger.patch(task, TaskPatch(metadata={"route": decision.to_dict()}))
