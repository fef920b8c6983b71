"""The two task transitions the default routes express as steps: concluding a review from
the reviewers' verdicts, and the retry policy (retry with backoff, or abandon)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from fleet_tui.domain.models import TaskPatch, TaskRecord
from fleet_tui.domain.status import TaskStatus
from fleet_tui.engine.bus import Notice
from fleet_tui.engine.retry import RETRY_AT_KEY, RetryPolicy, retry_at
from fleet_tui.engine.reviewers import Verdict, aggregate
from fleet_tui.engine.router.model import Sequence

if TYPE_CHECKING:
    from fleet_tui.engine.conductor import Conductor

REVIEWER_ADAPTER = "run_reviewer"


async def apply_review_outcome(conductor: "Conductor", task: TaskRecord, sequence: Sequence,
                               results: Mapping[str, Mapping[str, Any]], *, actor: str) -> dict[str, Any]:
    """Fold the verdicts of the sequence's reviewer steps (a reviewer step that failed counts
    as a comment): any request_changes -> rejected, otherwise ready."""
    expected = [s.name for s in sequence.steps if s.adapter == REVIEWER_ADAPTER]
    verdicts = [Verdict.from_dict(results[name]) for name in expected if name in results]
    outcome = aggregate(verdicts, expected)
    summary = (f"{outcome.approvals}/{len(outcome.verdicts)} reviewers approved"
               + (f"; {len(outcome.blocking_comments)} blocking comments" if outcome.blocking_comments else ""))
    data = {"classification": outcome.outcome, "summary": summary, "approvals": outcome.approvals,
            "reviewers": expected}
    if task.status != TaskStatus.REVIEWING:
        return {**data, "status": str(task.status), "changed": False}
    verdict_dicts = [v.to_dict() for v in outcome.verdicts]
    if outcome.outcome == "rejected":
        context = {**(task.failure_context or {}), "review_comments": outcome.blocking_comments}
        moved = await conductor.move(task, TaskStatus.REJECTED, TaskPatch(
            review_status="rejected", review_verdicts=verdict_dicts, failure_reason="review_rejected",
            failure_context=context), actor=actor, reason=summary)
    else:
        moved = await conductor.move(task, TaskStatus.READY, TaskPatch(
            review_status=outcome.outcome, review_verdicts=verdict_dicts), actor=actor, reason=summary)
    return {**data, "status": str(moved.status), "changed": True}


async def retry_or_abandon(conductor: "Conductor", task: TaskRecord, *, actor: str) -> dict[str, Any]:
    """The retry policy on a failed or rejected task: count the failure and schedule the next
    attempt with backoff (doubled over the capacity threshold), or abandon when spent."""
    if task.status not in (TaskStatus.FAILED, TaskStatus.REJECTED):
        return {"decision": "none", "status": str(task.status)}
    load = await conductor.registry.count_all_active() / max(conductor.governor.fleet_capacity, 1)
    decision = RetryPolicy(conductor.settings.retry).decide(task, fleet_load=load)
    if not decision.retry:
        moved = await conductor.move(task, TaskStatus.ABANDONED, actor=actor, reason=decision.reason)
        return {"decision": "abandon", "status": str(moved.status), "reason": decision.reason}
    counted = await conductor.registry.record_failure(task.id, operator=None, context=task.failure_context or {})
    if counted is None:
        moved = await conductor.move(task, TaskStatus.ABANDONED, actor=actor, reason="retry budget spent")
        return {"decision": "abandon", "status": str(moved.status), "reason": "retry budget spent"}
    metadata = {**counted.metadata, RETRY_AT_KEY: retry_at(decision.delay_s)}
    moved = await conductor.move(counted, TaskStatus.RETRYING, TaskPatch(metadata=metadata),
                                 actor=actor, reason=decision.reason)
    conductor.bus.publish(Notice("retry_scheduled", task.id, decision.reason))
    return {"decision": "retry", "status": str(moved.status), "delay_s": round(decision.delay_s, 3),
            "reason": decision.reason}
