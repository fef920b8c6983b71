"""A saga: steps with compensations. A failure runs the compensations of the failed step
(it may have half-happened) and of the steps that completed, in reverse order, reporting
each one so that the caller can audit it. Compensations must therefore be idempotent."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Action = Callable[[], Awaitable[Any]]
Compensation = Callable[[], Awaitable[None]]
OnCompensated = Callable[[str, str | None], Awaitable[None]]  # (step, error or None)
MayCompensate = Callable[[], Awaitable[bool]]


@dataclass
class SagaStep:
    name: str
    action: Action
    compensation: Compensation | None = None


class SagaFailed(Exception):
    def __init__(self, step: str, cause: BaseException, compensated: list[str], *, disowned: bool = False) -> None:
        super().__init__(f"step {step} failed: {cause}")
        self.step = step
        self.cause = cause
        self.compensated = compensated
        self.disowned = disowned  # what was made belongs to someone else now: left alone


async def run_saga(steps: list[SagaStep], *, on_compensated: OnCompensated,
                   may_compensate: MayCompensate | None = None) -> list[Any]:
    """Run steps in order; return their results or raise SagaFailed after compensating.
    may_compensate, asked once after a failure, may say that the work is no longer ours to
    undo (e.g. another conductor took the task over and adopted its process)."""
    done: list[SagaStep] = []
    results: list[Any] = []
    for step in steps:
        try:
            results.append(await step.action())
        except Exception as exc:  # any step failure triggers compensation
            if may_compensate is not None and not await _ask(may_compensate):
                raise SagaFailed(step.name, exc, [], disowned=True) from exc
            compensated = await _compensate([*done, step], on_compensated)
            raise SagaFailed(step.name, exc, compensated) from exc
        done.append(step)
    return results


async def _ask(may_compensate: MayCompensate) -> bool:
    try:
        return await may_compensate()
    except Exception as exc:  # cannot tell whose it is: undoing it might destroy another's work
        log.warning("cannot tell whether to compensate (%s); leaving what was made", type(exc).__name__)
        return False


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
