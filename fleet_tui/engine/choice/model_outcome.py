"""How an attempt's end counts for its model's circuit breaker (choice/routing.py skips a
model whose breaker is open)."""

from __future__ import annotations

from fleet_tui.domain.models import TaskRecord
from fleet_tui.engine.choice.routing import breaker_name
from fleet_tui.engine.kit.breaker import BreakerRegistry

# the failures that are the model's (its CLI crashed, vanished or its API was down); timeouts,
# stalls, OOM and CI failures are the task's
MODEL_FAILURES = frozenset({"agent_exit", "process_missing", "api_unavailable"})


async def note_model_outcome(breakers: BreakerRegistry, task: TaskRecord, *, exit_code: int | None,
                             failure: str | None) -> None:
    """A clean exit closes the model's breaker; a failure of the model's counts against it."""
    name = breaker_name(task.model, task.agent or "unknown")
    if exit_code == 0 and failure is None:
        await breakers.record(name, True)
    elif failure in MODEL_FAILURES:
        await breakers.record(name, False)
