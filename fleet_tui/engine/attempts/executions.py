"""An attempt's execution row closed: the usage its agent reported (tokens, cost: what
budgets are computed from) and how its end counts for the model's breaker. The row is
opened with the move to running (spawn/spawner.py opens_execution)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from fleet_tui.domain.models import RuntimeKind, TaskRecord
from fleet_tui.domain.prices import priced_cost
from fleet_tui.engine.choice.model_outcome import note_model_outcome
from fleet_tui.engine.kit.breaker import BreakerRegistry
from fleet_tui.infra.agents import AgentProfile, Usage, parse_usage
from fleet_tui.infra.protocols import Runtime
from fleet_tui.store import executions
from fleet_tui.store.db import Database

log = logging.getLogger(__name__)


def cost_of(task: TaskRecord, usage: Usage | None) -> float | None:
    """The cost the agent reported, else its tokens at the model's list price."""
    if usage is None or usage.cost_usd is not None:
        return usage.cost_usd if usage else None
    return priced_cost(task.model, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                       cached_tokens=usage.cached_tokens)


class Executions:
    """Closes attempts' execution rows. profiles: the fleet's agent profiles (how each
    reports its usage); runtime_for: where a task's agent ran (its output's tail)."""

    def __init__(self, db: Database, *, profiles: Mapping[str, AgentProfile],
                 runtime_for: Callable[[RuntimeKind], Runtime], breakers: BreakerRegistry) -> None:
        self._db = db
        self._profiles = profiles
        self._runtime_for = runtime_for
        self._breakers = breakers

    async def finish(self, task: TaskRecord, *, exit_code: int | None, failure: str | None = None) -> None:
        """Close the attempt's row with the usage the agent reported, and tell the model's
        breaker how the run went."""
        usage = await self.reported_usage(task)
        await executions.finish(self._db, task.id, attempt=task.retry_count + 1,
                                exit_code=exit_code, failure=failure,
                                input_tokens=usage.input_tokens if usage else None,
                                output_tokens=usage.output_tokens if usage else None,
                                cost_usd=cost_of(task, usage),
                                cached_tokens=usage.cached_tokens if usage else None,
                                total_tokens=usage.total_tokens if usage else None,
                                session_id=usage.session_id if usage else None)
        await note_model_outcome(self._breakers, task, exit_code=exit_code, failure=failure)

    async def reported_usage(self, task: TaskRecord, lines: int = 400) -> Usage | None:
        """Usage parsed from the tail of the agent's output (agents.parse_usage), or None."""
        profile = self._profiles.get(task.agent or "")
        if profile is None or not (profile.usage_patterns or profile.stream):
            return None
        try:
            tail = await self._runtime_for(RuntimeKind(task.runtime)).tail(task.id, lines)
        except Exception as exc:  # the log may be gone with the process
            log.debug("no log tail for usage of %s: %s", task.id, exc)
            return None
        return parse_usage(profile, "\n".join(tail))
