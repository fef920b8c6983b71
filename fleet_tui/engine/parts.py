"""Everything the conductor drives, built once from Settings: the container the composition
root fills (the ledger, the one writer of task state, among them). Tests build it with real
parts and may wrap one of them to inject a fault."""

from __future__ import annotations

import logging
import random
from datetime import datetime
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from collections.abc import Awaitable, Callable

from fleet_tui.config import Settings
from fleet_tui.domain.errors import ValidationFailed
from fleet_tui.domain.models import Operator, RuntimeKind, SpawnRequest, TaskRecord
from fleet_tui.engine.kit.breaker import BreakerRegistry
from fleet_tui.engine.kit.bus import EventBus, Notice
from fleet_tui.engine.ledger.task_ledger import TaskLedger
from fleet_tui.infra.agents import AgentProfile, load_profiles
from fleet_tui.infra.protocols import Forge, Runtime
from fleet_tui.infra.secrets import SecretsProvider
from fleet_tui.infra.worktree import WorktreeManager
from fleet_tui.store import audit as audit_store
from fleet_tui.store import notifications as notification_store
from fleet_tui.store.db import Database
from fleet_tui.store.tasks import TaskRegistry

log = logging.getLogger(__name__)



@dataclass
class EngineParts:
    settings: Settings
    db: Database
    registry: TaskRegistry
    worktrees: WorktreeManager
    forge: Forge
    runtime_factories: dict[RuntimeKind, Callable[[], Runtime]]
    bus: EventBus = field(default_factory=EventBus)
    profiles: dict[str, AgentProfile] = field(default_factory=dict)
    secrets: SecretsProvider = field(default_factory=SecretsProvider)
    reviews: Any = None  # the review pipeline, when configured
    builtin_reviews: Any = None  # built on first use when review routes run without it
    breakers: BreakerRegistry = field(default_factory=BreakerRegistry)  # per model ("model:<name>")
    rng: random.Random = field(default_factory=random.Random)  # Thompson draws; seeded in tests
    # agent -> when its usage limit resets, as the last routing decision read it (usage_pauses)
    usage_pauses: dict[str, datetime] = field(default_factory=dict)
    # operators who opted out of those pauses, as the last routing decision read them
    # (engine/choice/preferences.py); None until then: the settings file's list
    usage_opt_outs: frozenset[str] | None = None
    _runtimes: dict[RuntimeKind, Runtime] = field(default_factory=dict)
    # the one writer of task state (engine/ledger/task_ledger.py); build_parts makes it
    ledger: TaskLedger = field(init=False)

    # --- runtimes and agents -----------------------------------------------------------

    def runtime(self, kind: RuntimeKind) -> Runtime:
        if kind not in self._runtimes:
            factory = self.runtime_factories.get(kind)
            if factory is None:
                raise ValidationFailed("runtime", f"{kind} is not available in this fleet")
            self._runtimes[kind] = factory()
        return self._runtimes[kind]

    def review_pipeline(self) -> Any:
        """The configured review pipeline, else one of built-in reviewers (a review route
        dispatched while the configured pipeline is switched off)."""
        if self.reviews is not None:
            return self.reviews
        if self.builtin_reviews is None:
            from fleet_tui.engine.review.pipeline import ReviewPipeline

            self.builtin_reviews = ReviewPipeline.builtin(self.settings.review)
        return self.builtin_reviews

    def profile(self, name: str | None) -> AgentProfile:
        chosen = name or self.settings.agents.default_profile
        if chosen not in self.profiles:
            known = ", ".join(sorted(self.profiles))
            raise ValidationFailed("agent", f"unknown agent profile {chosen!r}; known: {known}")
        return self.profiles[chosen]

    def choose_agent(self, request: SpawnRequest) -> tuple[str, str | None]:
        """Override, else the task type's default, else the fallback; unavailable agents and
        open model breakers skipped. No I/O: reputation and budget need route()."""
        from fleet_tui.engine.choice.agent_choice import decide_without_history, resolved

        decision = resolved(self, decide_without_history(self, request))
        return decision.agent, decision.model

    async def route(self, operator: Operator, request: SpawnRequest, *, rate: Any = None) -> Any:
        """The full routing decision (RouteDecision): override, reputation (Thompson sampling
        over the fleet's history), default, fallback, gated by availability, breakers and the
        operator's credit budget. Raises BudgetRefused (after a budget_exceeded notification).
        rate: the RateLimiter to take the request from, with the routing reads."""
        from fleet_tui.engine.choice.agent_choice import decide

        return await decide(self, operator, request, rate=rate)

    # --- reads and the records beside a task's state (its state is the ledger's) -----------

    async def audit_trail(self, task_id: str, operator: Operator) -> list[dict[str, Any]]:
        entries = await audit_store.list_for_task(self.db, task_id, operator=operator)
        return [entry.__dict__ for entry in entries]

    async def executions_for(self, task_id: str, operator: Operator) -> list[dict[str, Any]]:
        from fleet_tui.store import executions

        return await executions.list_for_task(self.db, task_id, operator=operator)

    def opens_execution(self, plan: Any) -> Callable[[Any, TaskRecord], Awaitable[None]]:
        """The write that opens the attempt's execution row (with the prompt its plan gave),
        for the transaction of the move to running."""
        from fleet_tui.store import executions

        return partial(executions.open_attempt, prompt=plan.prompt, context_hash=plan.context_hash)

    async def finish_execution(self, task: TaskRecord, *, exit_code: int | None,
                               failure: str | None = None) -> None:
        """Close the attempt's row with the usage the agent reported (tokens, cost: what
        budgets are computed from), and tell the model's breaker how the run went."""
        from fleet_tui.store import executions

        usage = await self.reported_usage(task)
        await executions.finish(self.db, task.id, attempt=task.retry_count + 1,
                                exit_code=exit_code, failure=failure,
                                input_tokens=usage.input_tokens if usage else None,
                                output_tokens=usage.output_tokens if usage else None,
                                cost_usd=self._cost(task, usage),
                                cached_tokens=usage.cached_tokens if usage else None,
                                total_tokens=usage.total_tokens if usage else None,
                                session_id=usage.session_id if usage else None)
        await self.note_model_outcome(task, exit_code=exit_code, failure=failure)

    @staticmethod
    def _cost(task: TaskRecord, usage: Any) -> float | None:
        """The cost the agent reported, else its tokens at the model's list price."""
        from fleet_tui.domain.prices import priced_cost

        if usage is None or usage.cost_usd is not None:
            return usage.cost_usd if usage else None
        return priced_cost(task.model, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                           cached_tokens=usage.cached_tokens)

    async def reported_usage(self, task: TaskRecord, lines: int = 400) -> Any:
        """Usage parsed from the tail of the agent's output (agents.parse_usage), or None."""
        from fleet_tui.infra.agents import parse_usage

        profile = self.profiles.get(task.agent or "")
        if profile is None or not (profile.usage_patterns or profile.stream):
            return None
        try:
            tail = await self.runtime(RuntimeKind(task.runtime)).tail(task.id, lines)
        except Exception as exc:  # the log may be gone with the process
            log.debug("no log tail for usage of %s: %s", task.id, exc)
            return None
        return parse_usage(profile, "\n".join(tail))

    async def note_model_outcome(self, task: TaskRecord, *, exit_code: int | None,
                                 failure: str | None) -> None:
        """A clean exit closes the model's breaker; a crash or a vanished process counts
        against it (timeouts, stalls, OOM and CI failures are the task's, not the model's)."""
        from fleet_tui.engine.choice.routing import breaker_name

        name = breaker_name(task.model, task.agent or "unknown")
        if exit_code == 0 and failure is None:
            await self.breakers.record(name, True)
        elif failure in ("agent_exit", "process_missing", "api_unavailable"):
            await self.breakers.record(name, False)

    async def notify(self, task: TaskRecord, kind: str, summary: str, *, dedup_key: str | None = None) -> None:
        """Record the notification (the notification worker delivers it) and tell the faces.
        A repeated dedup_key records nothing new."""
        async with self.db.system() as conn:
            await notification_store.record(conn, task_id=task.id, operator_id=task.operator_id,
                                            type=kind, summary=summary, dedup_key=dedup_key)
        self.bus.publish(Notice(kind, task.id, summary))

    async def notify_operator(self, operator_id: str, kind: str, summary: str) -> None:
        """A notification about no task in particular (e.g. budget_exceeded before a spawn)."""
        async with self.db.system() as conn:
            await notification_store.record(conn, task_id=None, operator_id=operator_id,
                                            type=kind, summary=summary)
        self.bus.publish(Notice(kind, None, summary))

    async def release_runtime(self, task: TaskRecord) -> None:
        """What an exited agent left in the task's runtime (the ledger's move out of running)."""
        await self.runtime(RuntimeKind(task.runtime)).release(task.id)


def build_parts(settings: Settings, db: Database, **overrides: Any) -> EngineParts:
    """The real parts for these settings: local forge or gh, tmux and (lazily) docker."""
    from fleet_tui.infra.forge_local import LocalForge

    data = settings.data_dir
    worktrees = WorktreeManager(
        settings.worktree_base, data / "snapshots", git_timeout_s=settings.worktree.git_timeout_s,
        setup_command=settings.worktree.setup_command, setup_timeout_s=settings.worktree.setup_timeout_s,
    )
    if settings.forge.kind == "github":
        from fleet_tui.engine.kit.call_budget import SharedCallBudget
        from fleet_tui.infra.forge_github import BUDGET_WINDOW_S, GithubForge

        # one budget for the fleet: every conductor's gh calls count against it
        forge: Forge = GithubForge(budget=SharedCallBudget(
            db, "github:calls", settings.forge.gh_budget_per_hour, BUDGET_WINDOW_S))
    else:
        forge = LocalForge(ci_command=settings.forge.ci_command, ci_timeout_s=settings.forge.ci_timeout_s,
                           git_timeout_s=settings.worktree.git_timeout_s, fleet_worktrees=settings.worktree_base)

    def tmux() -> Runtime:
        from fleet_tui.infra.tmux_runtime import TmuxRuntime

        return TmuxRuntime(settings.tmux_socket, data / "logs")

    def docker() -> Runtime:
        from fleet_tui.infra.docker_runtime import DockerRuntime

        return DockerRuntime.from_settings(settings.runtime, log_dir=data / "logs")

    from fleet_tui.engine.kit.fleet_breakers import SharedBreakerRegistry

    parts = EngineParts(
        settings=settings, db=db, registry=TaskRegistry(db), worktrees=worktrees, forge=forge,
        runtime_factories={RuntimeKind.TMUX: tmux, RuntimeKind.DOCKER: docker},
        profiles=load_profiles(settings.agents.profiles),
        breakers=SharedBreakerRegistry(db),  # the models' breakers are the fleet's
    )
    if settings.review.enabled:
        from fleet_tui.engine.review.pipeline import ReviewPipeline

        parts.reviews = ReviewPipeline.from_settings(settings.review)
    for key, value in overrides.items():
        setattr(parts, key, value)
    if "ledger" not in overrides:  # after the overrides: it writes through the parts a test chose
        parts.ledger = TaskLedger(parts.registry, parts.db, publish=parts.bus.publish,
                                  release=parts.release_runtime, notify=parts.notify)
    return parts
