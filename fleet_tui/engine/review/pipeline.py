"""The review pipeline: what the review route's steps call (the seeded `review_pipeline`
sequence: open the review, its reviewers in one wave, conclude). The router decides which
reviewers run (a step names a focus, or a reviewer by params.reviewer); this module runs
them and judges the result.

Each verdict is stored on the task as it arrives (review_verdicts, with the attempt it
belongs to), so a review resumed after a conductor restart reruns only the reviewers with
no verdict yet. All verdicts in: any request_changes -> rejected (the comments feed the
retry's prompt); else ready once the definition of done holds (N approvals among them),
else rejected with what is missing. A reviewer that errors or is missing counts as a
comment. Past the timeout -> ready with a warning (approvals waived, the other checks still
hold), unless a verdict already in asks for changes. The review's own state lives in
task.metadata['review'] and the definition of done in task.metadata['done']."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from collections.abc import Callable, Mapping, Sequence

from fleet_tui.config import ReviewerSpec, ReviewSettings
from fleet_tui.domain.errors import FleetError, StaleVersionError
from fleet_tui.domain.errors import ReviewTimedOut as ReviewTimedOut  # in the error catalogue
from fleet_tui.domain.models import TaskPatch, TaskRecord, TaskType
from fleet_tui.domain.status import TaskStatus
from fleet_tui.engine.kit.bus import Notice
from fleet_tui.engine.review.done import checks_for, evaluate_done
from fleet_tui.engine.review.runners import ReviewRunner, make_runner
from fleet_tui.engine.review.reviewers.verdict import ReviewOutcome, Verdict, aggregate
from fleet_tui.engine.kit.sanitize import sanitize

if TYPE_CHECKING:
    from fleet_tui.engine.review.host import ReviewHost

log = logging.getLogger(__name__)
ACTOR = "review"
S = TaskStatus
RunnerFactory = Callable[[ReviewerSpec, "ReviewHost"], ReviewRunner]
BUILTIN_FOCUSES = ("security", "logic", "architecture")


class ReviewPipeline:
    def __init__(self, reviewers: Sequence[ReviewerSpec], *, timeout_s: float = 1800.0,
                 approvals_needed: int = 2, done_checks: Mapping[TaskType, Sequence[str]] | None = None,
                 max_diff_lines: int = 1500, runner_factory: RunnerFactory | None = None) -> None:
        labels = [spec.label for spec in reviewers]
        if len(set(labels)) != len(labels):
            raise ValueError(f"reviewer names must be distinct: {labels}")
        self.reviewers = list(reviewers)
        self.timeout_s = timeout_s
        self.approvals_needed = approvals_needed
        self.done_checks = dict(done_checks or {})
        self.max_diff_lines = max_diff_lines
        self._runner_factory = runner_factory
        self._active: dict[str, set[asyncio.Task[Any]]] = {}  # task id -> reviewers running
        self._locks: dict[str, asyncio.Lock] = {}

    @classmethod
    def from_settings(cls, settings: ReviewSettings) -> ReviewPipeline:
        return cls(settings.reviewers, timeout_s=settings.timeout_s, approvals_needed=settings.approvals,
                   done_checks=settings.done, max_diff_lines=settings.max_diff_lines)

    @classmethod
    def builtin(cls, settings: ReviewSettings) -> ReviewPipeline:
        """Built-in reviewers only, one per focus: what a review route runs when the
        configured pipeline is switched off."""
        reviewers = [ReviewerSpec(kind="builtin", focus=f, name=f"builtin-{f}") for f in BUILTIN_FOCUSES]
        return cls(reviewers, timeout_s=settings.timeout_s, approvals_needed=settings.approvals,
                   done_checks=settings.done, max_diff_lines=settings.max_diff_lines)

    @property
    def labels(self) -> list[str]:
        return [spec.label for spec in self.reviewers]

    def reviewer_for(self, *, focus: str, name: str | None = None) -> ReviewerSpec | None:
        """The configured reviewer a step asks for: by name, else the first of that focus."""
        for spec in self.reviewers:
            if (name is not None and spec.label == name) or (name is None and spec.focus == focus):
                return spec
        return None

    def running(self, task_id: str) -> bool:
        return any(not job.done() for job in self._active.get(task_id, ()))

    async def shutdown(self) -> None:
        for jobs in list(self._active.values()):
            for job in list(jobs):
                job.cancel()

    # --- the review route's steps ------------------------------------------------------------

    async def open(self, c: ReviewHost, task: TaskRecord, labels: Sequence[str]) -> TaskRecord:
        """pr_created -> reviewing with the review's state. A review already open for this
        attempt is left as it is (its clock keeps running): that is a resumed review."""
        attempt = task.retry_count + 1
        state = task.metadata.get("review") or {}
        fresh = {"attempt": attempt, "started_at": time.time(), "reviewers": list(labels),
                 "timeout_s": self.timeout_s}
        if task.status == S.REVIEWING:
            if state.get("attempt") == attempt:
                return task
            return await c.patch(task, TaskPatch(metadata={"review": fresh}))
        return await c.move(task, S.REVIEWING, TaskPatch(
            review_status="in_progress", review_verdicts=[], metadata={"review": fresh}),
            actor=ACTOR, reason=f"{len(labels)} reviewers started")

    async def review(self, c: ReviewHost, task: TaskRecord, spec: ReviewerSpec) -> Verdict:
        """One reviewer's verdict on the task's diff, stored on the task as it arrives. A
        verdict this attempt already has is reused; past the review's timeout -> ReviewTimedOut."""
        attempt = task.retry_count + 1
        for stored in self._verdicts_of(task, attempt):
            if stored.reviewer == spec.label:
                return stored
        remaining = self._remaining_s(task)
        if remaining <= 0:
            raise ReviewTimedOut(f"no verdict from {spec.label} within {self.timeout_s:g}s")
        job = asyncio.ensure_future(self._review_one(c, task, self._runner(spec, c)))
        jobs = self._active.setdefault(task.id, set())
        jobs.add(job)
        try:
            verdict = await asyncio.wait_for(job, remaining)
        except TimeoutError:
            raise ReviewTimedOut(f"no verdict from {spec.label} within {self.timeout_s:g}s") from None
        finally:
            jobs.discard(job)
            if not jobs:
                self._active.pop(task.id, None)
        await self._store(c, task.id, verdict, attempt)
        return verdict

    async def conclude(self, c: ReviewHost, task: TaskRecord, labels: Sequence[str]) -> dict[str, Any]:
        """Judge the verdicts of the given reviewers for this attempt: ready or rejected.
        Returns what a handoff may test: classification, summary, status, changed."""
        if task.status != S.REVIEWING:
            return {"classification": "none", "status": str(task.status), "changed": False,
                    "summary": f"task is {task.status}, not reviewing"}
        attempt = task.retry_count + 1
        order = {label: i for i, label in enumerate(labels)}  # the route's order, not arrival's
        verdicts = sorted((v for v in self._verdicts_of(task, attempt) if v.reviewer in order),
                          key=lambda v: order[v.reviewer])
        missing = [label for label in labels if label not in {v.reviewer for v in verdicts}]
        timed_out = self._remaining_s(task) <= 0
        moved, outcome = await self._conclude(c, task, verdicts, labels,
                                              timed_out_without=missing if timed_out else [])
        classification = "rejected" if moved.status == S.REJECTED else outcome.outcome
        summary = (f"{outcome.approvals}/{len(outcome.verdicts)} reviewers approved"
                   + (f"; {len(outcome.blocking_comments)} blocking comments" if outcome.blocking_comments else ""))
        return {"classification": classification, "summary": summary, "status": str(moved.status),
                "review_status": moved.review_status, "approvals": outcome.approvals,
                "reviewers": list(labels), "changed": True}

    def _remaining_s(self, task: TaskRecord) -> float:
        state = task.metadata.get("review") or {}
        started = float(state.get("started_at", time.time()))
        return self.timeout_s - (time.time() - started)

    # --- one reviewer ---------------------------------------------------------------------------

    def _runner(self, spec: ReviewerSpec, c: ReviewHost) -> ReviewRunner:
        if self._runner_factory is not None:
            return self._runner_factory(spec, c)

        return make_runner(spec, profile_for=c.profile, secrets=c.secrets,
                           timeout_s=spec.timeout_s or self.timeout_s, audit=c.audit, max_diff_lines=self.max_diff_lines)

    async def _review_one(self, c: ReviewHost, task: TaskRecord, runner: ReviewRunner) -> Verdict:
        try:
            diff = await c.forge.diff(c.change_ref(task))
            verdict = await runner.review(diff, task)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a reviewer never takes the pipeline down
            log.exception("reviewer %s of %s failed", runner.name, task.id)
            verdict = Verdict.failed(runner.name, runner.focus, f"{type(exc).__name__}: {exc}")
        verdict.reviewer, verdict.focus = runner.name, runner.focus
        return _clean(verdict, task)

    async def _store(self, c: ReviewHost, task_id: str, verdict: Verdict, attempt: int) -> None:
        lock = self._locks.setdefault(task_id, asyncio.Lock())
        async with lock:
            for _ in range(10):
                task = await c.get_task(task_id)
                if task.status != S.REVIEWING or task.retry_count + 1 != attempt:
                    return  # the review ended (or the operator stopped the task) meanwhile
                kept = [v for v in task.review_verdicts
                        if not (v.get("attempt") == attempt and v.get("reviewer") == verdict.reviewer)]
                try:
                    await c.patch(task, TaskPatch(
                        review_verdicts=kept + [{**verdict.to_dict(), "attempt": attempt}]))
                    return
                except StaleVersionError:
                    await asyncio.sleep(0.05)
        log.warning("verdict of %s on %s not stored: the task kept changing", verdict.reviewer, task_id)

    # --- conclusion ------------------------------------------------------------------------------

    def _verdicts_of(self, task: TaskRecord, attempt: int) -> list[Verdict]:
        return [Verdict.from_dict(v) for v in task.review_verdicts if v.get("attempt") == attempt]

    async def _conclude(self, c: ReviewHost, task: TaskRecord, verdicts: list[Verdict], labels: Sequence[str],
                        *, timed_out_without: list[str]) -> tuple[TaskRecord, ReviewOutcome]:
        attempt = task.retry_count + 1
        outcome = aggregate(verdicts, expected_reviewers=labels)
        stored = [{**v.to_dict(), "attempt": attempt} for v in outcome.verdicts]
        if timed_out_without:
            for v in stored:
                if v["reviewer"] in timed_out_without:
                    v["error"] = f"no verdict within {self.timeout_s:g}s"
        review_state = {**(task.metadata.get("review") or {}), **_summary(outcome), "finished_at": time.time()}
        if outcome.outcome == "rejected":
            return await self._reject(c, task, outcome.blocking_comments, stored, review_state,
                                      status="changes_requested", done=None), outcome
        warning = None
        if timed_out_without:
            warning = (f"review timed out after {self.timeout_s:g}s without a verdict from "
                       f"{', '.join(timed_out_without)}; ready without them")
            review_state["warning"] = warning
        # a route that runs fewer reviewers than the approvals asked for can still pass
        needed = min(self.approvals_needed, len(labels))
        done = await evaluate_done(
            task, forge=c.forge, change=c.change_ref(task), checks=checks_for(task.task_type, self.done_checks), approvals=outcome.approvals,
            needed=needed, approvals_waived="review timed out" if timed_out_without else None)
        if not done.holds:
            comments = [f"definition of done: {item}" for item in done.failing]
            comments += [f"{v.reviewer}: {text}" for v in outcome.verdicts for text in v.comments]
            return await self._reject(c, task, comments, stored, review_state, status="not_done",
                                      done=done.to_dict()), outcome
        status = ("warning: timed out" if warning else
                  "approved" if outcome.outcome == "approved" else "approved_with_comments")
        moved = await c.move(task, S.READY, TaskPatch(
            review_status=status, review_verdicts=stored,
            metadata={"review": review_state, "done": done.to_dict()}),
            actor=ACTOR, reason=warning or f"review {status}: {outcome.approvals} approval(s)")
        if warning:
            c.publish(Notice("review_timeout", task.id, warning))
        return moved, outcome

    async def _reject(self, c: ReviewHost, task: TaskRecord, comments: list[str], stored: list[dict[str, Any]],
                      review_state: dict[str, Any], *, status: str, done: dict[str, Any] | None) -> TaskRecord:
        from fleet_tui.engine.kit.sanitize import failure_context

        worktree = Path(task.worktree_path) if task.worktree_path else None
        try:
            diff = await c.forge.diff(c.change_ref(task))
        except FleetError:
            diff = ""
        context = failure_context(diff=diff, review_comments=comments, worktree=worktree)
        context["reason"] = "the review asked for changes" if status == "changes_requested" \
            else "the change does not meet the definition of done"
        metadata: dict[str, Any] = {"review": review_state}
        if done is not None:
            metadata["done"] = done
        moved = await c.move(task, S.REJECTED, TaskPatch(
            review_status=status, review_verdicts=stored, failure_reason="review_rejected",
            failure_context=context, metadata=metadata),
            actor=ACTOR, reason=f"review {status}: {len(comments)} comment(s)")
        await c.notify(moved, "failed", f"attempt {task.retry_count + 1} rejected by review ({status})")
        return moved


def pipeline_source(configured: ReviewPipeline | None, settings: ReviewSettings) -> Callable[[], ReviewPipeline]:
    """The pipeline a review step runs: the configured one, else one of built-in reviewers
    (a review route dispatched while the configured pipeline is switched off), made on
    first use and kept."""
    if configured is not None:
        return lambda: configured
    made: list[ReviewPipeline] = []

    def builtin() -> ReviewPipeline:
        if not made:
            made.append(ReviewPipeline.builtin(settings))
        return made[0]

    return builtin


def _clean(verdict: Verdict, task: TaskRecord) -> Verdict:
    """Verdicts are stored and shown: no secrets, no paths outside the worktree."""
    def clean(text: str) -> str:
        return sanitize(text, worktree=task.worktree_path)

    return Verdict(verdict.reviewer, verdict.focus, verdict.verdict, [clean(t) for t in verdict.comments],
                   clean(verdict.error) if verdict.error else None)


def _summary(outcome: ReviewOutcome) -> dict[str, Any]:
    return {"outcome": outcome.outcome, "approvals": outcome.approvals, "missing": list(outcome.missing)}
