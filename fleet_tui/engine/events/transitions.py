"""The task transitions the default routes express as steps: opening and concluding a
review (through the review pipeline, over the reviewers the sequence's steps name), and the
retry policy (retry with backoff, or abandon)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fleet_tui.config import ReviewerSpec
from fleet_tui.domain.agent_failures import NOT_RETRIED, USAGE_LIMITED, WHY_NOT_RETRIED
from fleet_tui.domain.errors import RUNTIME_UNAVAILABLE
from fleet_tui.domain.models import TaskPatch, TaskRecord
from fleet_tui.domain.status import TaskStatus
from fleet_tui.engine.kit.bus import Notice
from fleet_tui.engine.attempts.retry import RETRY_AT_KEY, RetryPolicy, retry_at
from fleet_tui.engine.choice.preferences import usage_limit_opt_outs
from fleet_tui.engine.events.policy import Sequence, Step

if TYPE_CHECKING:
    from fleet_tui.engine.events.step_services import StepServices
    from fleet_tui.engine.review.pipeline import ReviewPipeline

REVIEWER_ADAPTER = "run_reviewer"


def reviewer_steps(sequence: Sequence) -> list[Step]:
    return [s for s in sequence.steps if s.adapter == REVIEWER_ADAPTER]


def reviewer_spec(pipeline: ReviewPipeline, step: Step) -> ReviewerSpec | None:
    """The configured reviewer a run_reviewer step stands for (params.reviewer names one;
    else the first of params.focus); None when the pipeline has none of that focus."""
    name = step.params.get("reviewer")
    return pipeline.reviewer_for(focus=str(step.params.get("focus", "logic")),
                                 name=str(name) if name else None)


def sequence_reviewers(pipeline: ReviewPipeline, sequence: Sequence) -> list[str]:
    """The labels of the reviewers a review sequence runs, in step order, once each."""
    labels: list[str] = []
    for step in reviewer_steps(sequence):
        spec = reviewer_spec(pipeline, step)
        if spec is not None and spec.label not in labels:
            labels.append(spec.label)
    return labels


async def open_review(services: StepServices, task: TaskRecord, sequence: Sequence) -> dict[str, Any]:
    if task.status not in (TaskStatus.PR_CREATED, TaskStatus.REVIEWING):
        return {"status": str(task.status), "changed": False}
    pipeline = services.reviews()
    opened = await pipeline.open(services.review_host, task, sequence_reviewers(pipeline, sequence))
    return {"status": str(opened.status), "changed": opened.version != task.version,
            "reviewers": opened.metadata.get("review", {}).get("reviewers", [])}


async def conclude_review(services: StepServices, task: TaskRecord, sequence: Sequence) -> dict[str, Any]:
    pipeline = services.reviews()
    concluded: dict[str, Any] = await pipeline.conclude(services.review_host, task, sequence_reviewers(pipeline, sequence))
    return concluded


WAITED_OUT = {USAGE_LIMITED: "usage limited", RUNTIME_UNAVAILABLE: "runtime unavailable"}


async def retry_or_abandon(services: StepServices, task: TaskRecord, *, actor: str) -> dict[str, Any]:
    """The retry policy on a failed or rejected task: count the failure and schedule the next
    attempt with backoff (doubled over the capacity threshold), or abandon when spent."""
    if task.status not in (TaskStatus.FAILED, TaskStatus.REJECTED):
        return {"decision": "none", "status": str(task.status)}
    if task.needs_input:  # the agent asked for something: a person grants it or answers
        return {"decision": "wait_for_person", "status": str(task.status)}
    if task.failure_reason in NOT_RETRIED:  # the same run would fail (or attack) the same way
        reason = f"{task.failure_reason}: not retried ({WHY_NOT_RETRIED[task.failure_reason]})"
        moved = await services.move(task, TaskStatus.ABANDONED, actor=actor, reason=reason)
        return {"decision": "abandon", "status": str(moved.status), "reason": reason}
    waited = (task.failure_context or {}).get("retry_at")
    opted_out = task.failure_reason == USAGE_LIMITED and task.operator_id in await usage_limit_opt_outs(
        services.db, services.retry.usage_limit_opt_out)
    if task.failure_reason in WAITED_OUT and waited and not opted_out:
        # a usage limit or a runtime that is down is no fault of the attempt: wait, spend no budget
        reason = f"{WAITED_OUT[task.failure_reason]}: attempt {task.retry_count + 1} again at {waited}"
        moved = await services.move(task, TaskStatus.RETRYING, TaskPatch(
            metadata={**task.metadata, RETRY_AT_KEY: waited}), actor=actor, reason=reason)
        services.publish(Notice("retry_scheduled", task.id, reason))
        return {"decision": "wait", "status": str(moved.status), "retry_at": waited, "reason": reason}
    load = await services.count_live() / max(services.headroom.fleet_capacity, 1)
    decision = RetryPolicy(services.retry).decide(task, fleet_load=load)
    if not decision.retry:
        moved = await services.move(task, TaskStatus.ABANDONED, actor=actor, reason=decision.reason)
        return {"decision": "abandon", "status": str(moved.status), "reason": decision.reason}
    counted = await services.record_failure(task, context=task.failure_context or {})
    if counted is None:
        moved = await services.move(task, TaskStatus.ABANDONED, actor=actor, reason="retry budget spent")
        return {"decision": "abandon", "status": str(moved.status), "reason": "retry budget spent"}
    metadata = {**counted.metadata, RETRY_AT_KEY: retry_at(decision.delay_s)}
    moved = await services.move(counted, TaskStatus.RETRYING, TaskPatch(metadata=metadata),
                                 actor=actor, reason=decision.reason)
    services.publish(Notice("retry_scheduled", task.id, decision.reason))
    return {"decision": "retry", "status": str(moved.status), "delay_s": round(decision.delay_s, 3),
            "reason": decision.reason}
