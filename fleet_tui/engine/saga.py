"""A saga: steps with compensations. A failure runs the compensations of the failed step
(it may have half-happened) and of the steps that completed, in reverse order, reporting
each one so that the caller can audit it. Compensations must therefore be idempotent."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

log = logging.getLogger(__name__)

Action = Callable[[], Awaitable[Any]]
Compensation = Callable[[], Awaitable[None]]
OnCompensated = Callable[[str, str | None], Awaitable[None]]  # (step, error or None)


@dataclass
class SagaStep:
    name: str
    action: Action
    compensation: Compensation | None = None


class SagaFailed(Exception):
    def __init__(self, step: str, cause: BaseException, compensated: list[str]) -> None:
        super().__init__(f"step {step} failed: {cause}")
        self.step = step
        self.cause = cause
        self.compensated = compensated


async def run_saga(steps: list[SagaStep], *, on_compensated: OnCompensated) -> list[Any]:
    """Run steps in order; return their results or raise SagaFailed after compensating."""
    done: list[SagaStep] = []
    results: list[Any] = []
    for step in steps:
        try:
            results.append(await step.action())
        except Exception as exc:  # any step failure triggers compensation
            compensated = await _compensate([*done, step], on_compensated)
            raise SagaFailed(step.name, exc, compensated) from exc
        done.append(step)
    return results


async def _compensate(done: list[SagaStep], on_compensated: OnCompensated) -> list[str]:
    names: list[str] = []
    for step in reversed(done):
        if step.compensation is None:
            continue
        error: str | None = None
        try:
            await step.compensation()
        except Exception as exc:  # keep compensating the rest; report the failure
            error = f"{type(exc).__name__}: {exc}"
            log.exception("compensation of %s failed", step.name)
        names.append(step.name)
        await on_compensated(step.name, error)
    return names
