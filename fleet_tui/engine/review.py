"""The review pipeline: when a change is found and CI passes, 2-3 reviewers with distinct
focus review its diff in the background; the monitor calls check() every cycle.

All verdicts in: any request_changes -> rejected (the comments feed the retry's prompt);
else ready once the definition of done holds (N approvals among them), else rejected with
what is missing. A reviewer that errors or is missing counts as a comment. Past the
timeout -> ready with a warning (approvals waived, the other checks still hold), unless a
verdict already in asks for changes. Verdicts are stored on the task as they arrive
(review_verdicts, with the attempt they belong to); the review's own state lives in
task.metadata['review'] and the definition of done in task.metadata['done']."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from fleet_tui.config import ReviewerSpec, ReviewSettings
from fleet_tui.domain.errors import FleetError, StaleVersionError
from fleet_tui.domain.models import TaskPatch, TaskRecord, TaskType
from fleet_tui.domain.status import TaskStatus
from fleet_tui.engine.bus import Notice
from fleet_tui.engine.done import checks_for, evaluate_done
from fleet_tui.engine.review_runners import ReviewRunner, make_runner
from fleet_tui.engine.reviewers.verdict import ReviewOutcome, Verdict, aggregate
from fleet_tui.engine.sanitize import sanitize

if TYPE_CHECKING:
    from fleet_tui.engine.conductor import Conductor

log = logging.getLogger(__name__)
ACTOR = "review"
S = TaskStatus
RunnerFactory = Callable[[ReviewerSpec, "Conductor"], ReviewRunner]


@dataclass
class _Run:
    attempt: int
    jobs: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    def active(self) -> bool:
        return any(not job.done() for job in self.jobs.values())

    def cancel(self) -> None:
        for job in self.jobs.values():
            job.cancel()


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
        self._runs: dict[str, _Run] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @classmethod
    def from_settings(cls, settings: ReviewSettings) -> ReviewPipeline:
        return cls(settings.reviewers, timeout_s=settings.timeout_s, approvals_needed=settings.approvals,
                   done_checks=settings.done, max_diff_lines=settings.max_diff_lines)

    @property
    def labels(self) -> list[str]:
        return [spec.label for spec in self.reviewers]

    # --- the monitor's two calls -----------------------------------------------------------

    async def begin(self, c: "Conductor", task: TaskRecord) -> TaskRecord:
        """pr_created with CI passing -> reviewing, then start every reviewer."""
        attempt = task.retry_count + 1
        state = {"attempt": attempt, "started_at": time.time(), "reviewers": self.labels,
                 "timeout_s": self.timeout_s}
        task = await c.move(task, S.REVIEWING, TaskPatch(
            review_status="in_progress", review_verdicts=[], metadata={"review": state}),
            actor=ACTOR, reason=f"{len(self.reviewers)} reviewers started")
        await self._start(c, task, self.labels)
        return task

    async def check(self, c: "Conductor", task: TaskRecord) -> TaskRecord | None:
        """Conclude when every verdict is in or the timeout passed; restart reviewers that
        no one runs (e.g. after a conductor restart). Returns the task if it moved."""
        attempt = task.retry_count + 1
        state = task.metadata.get("review") or {}
        if state.get("attempt") != attempt:  # reviewing without a review of this attempt
            state = {"attempt": attempt, "started_at": time.time(), "reviewers": self.labels,
                     "timeout_s": self.timeout_s}
            task = await c.parts.patch(task, TaskPatch(metadata={"review": state}))
        verdicts = self._verdicts_of(task, attempt)
        missing = [label for label in self.labels if label not in {v.reviewer for v in verdicts}]
        timed_out = time.time() - float(state.get("started_at", 0)) > self.timeout_s
        try:
            if not missing:
                return await self._conclude(c, task, verdicts, timed_out_without=[])
            if timed_out:
                self._stop(task.id)
                return await self._conclude(c, task, verdicts, timed_out_without=missing)
        except FleetError as exc:
            if isinstance(exc, StaleVersionError):
                raise
            log.warning("review of %s waits: %s", task.id, exc)  # forge down: next cycle
            return None
        run = self._runs.get(task.id)
        if run is None or run.attempt != attempt or not run.active():
            await self._start(c, task, missing)
        return None

    def running(self, task_id: str) -> bool:
        run = self._runs.get(task_id)
        return run is not None and run.active()

    async def shutdown(self) -> None:
        for task_id in list(self._runs):
            self._stop(task_id)

    # --- reviewers in the background -----------------------------------------------------------

    async def _start(self, c: "Conductor", task: TaskRecord, labels: Sequence[str]) -> None:
        self._stop(task.id)
        attempt = task.retry_count + 1
        diff = await c.parts.forge.diff(c.change_ref(task))
        run = _Run(attempt)
        self._runs[task.id] = run
        for spec in self.reviewers:
            if spec.label in labels:
                runner = self._runner(spec, c)
                run.jobs[spec.label] = asyncio.create_task(
                    self._review_one(c, task, runner, diff, attempt), name=f"review-{task.id}-{spec.label}")

    def _runner(self, spec: ReviewerSpec, c: "Conductor") -> ReviewRunner:
        if self._runner_factory is not None:
            return self._runner_factory(spec, c)

        async def audit(task: TaskRecord, action: str, detail: dict[str, Any]) -> None:
            await c.audit(task, action, detail)

        return make_runner(spec, c.parts, timeout_s=self.timeout_s, audit=audit,
                           max_diff_lines=self.max_diff_lines)

    def _stop(self, task_id: str) -> None:
        run = self._runs.pop(task_id, None)
        if run is not None:
            run.cancel()

    async def _review_one(self, c: "Conductor", task: TaskRecord, runner: ReviewRunner, diff: str,
                          attempt: int) -> None:
        try:
            verdict = await runner.review(diff, task)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a reviewer never takes the pipeline down
            log.exception("reviewer %s of %s failed", runner.name, task.id)
            verdict = Verdict.failed(runner.name, runner.focus, f"{type(exc).__name__}: {exc}")
        verdict.reviewer, verdict.focus = runner.name, runner.focus
        await self._store(c, task.id, _clean(verdict, task), attempt)

    async def _store(self, c: "Conductor", task_id: str, verdict: Verdict, attempt: int) -> None:
        lock = self._locks.setdefault(task_id, asyncio.Lock())
        async with lock:
            for _ in range(10):
                task = await c.registry.get(task_id, operator=None)
                if task.status != S.REVIEWING or task.retry_count + 1 != attempt:
                    return  # the review ended (or the operator stopped the task) meanwhile
                kept = [v for v in task.review_verdicts
                        if not (v.get("attempt") == attempt and v.get("reviewer") == verdict.reviewer)]
                try:
                    await c.parts.patch(task, TaskPatch(
                        review_verdicts=kept + [{**verdict.to_dict(), "attempt": attempt}]))
                    return
                except StaleVersionError:
                    await asyncio.sleep(0.05)
        log.warning("verdict of %s on %s not stored: the task kept changing", verdict.reviewer, task_id)

    # --- conclusion ------------------------------------------------------------------------------

    def _verdicts_of(self, task: TaskRecord, attempt: int) -> list[Verdict]:
        return [Verdict.from_dict(v) for v in task.review_verdicts if v.get("attempt") == attempt]

    async def _conclude(self, c: "Conductor", task: TaskRecord, verdicts: list[Verdict], *,
                        timed_out_without: list[str]) -> TaskRecord:
        attempt = task.retry_count + 1
        outcome = aggregate(verdicts, expected_reviewers=self.labels)
        stored = [{**v.to_dict(), "attempt": attempt} for v in outcome.verdicts]
        if timed_out_without:
            for v in stored:
                if v["reviewer"] in timed_out_without:
                    v["error"] = f"no verdict within {self.timeout_s:g}s"
        review_state = {**(task.metadata.get("review") or {}), **_summary(outcome), "finished_at": time.time()}
        if outcome.outcome == "rejected":
            self._stop(task.id)
            return await self._reject(c, task, outcome.blocking_comments, stored, review_state,
                                      status="changes_requested", done=None)
        warning = None
        if timed_out_without:
            warning = (f"review timed out after {self.timeout_s:g}s without a verdict from "
                       f"{', '.join(timed_out_without)}; ready without them")
            review_state["warning"] = warning
        done = await evaluate_done(
            c, task, checks=checks_for(task.task_type, self.done_checks), approvals=outcome.approvals,
            needed=self.approvals_needed, approvals_waived="review timed out" if timed_out_without else None)
        self._stop(task.id)
        if not done.holds:
            comments = [f"definition of done: {item}" for item in done.failing]
            comments += [f"{v.reviewer}: {text}" for v in outcome.verdicts for text in v.comments]
            return await self._reject(c, task, comments, stored, review_state, status="not_done",
                                      done=done.to_dict())
        status = ("warning: timed out" if warning else
                  "approved" if outcome.outcome == "approved" else "approved_with_comments")
        moved = await c.move(task, S.READY, TaskPatch(
            review_status=status, review_verdicts=stored,
            metadata={"review": review_state, "done": done.to_dict()}),
            actor=ACTOR, reason=warning or f"review {status}: {outcome.approvals} approval(s)")
        if warning:
            c.bus.publish(Notice("review_timeout", task.id, warning))
        return moved

    async def _reject(self, c: "Conductor", task: TaskRecord, comments: list[str], stored: list[dict[str, Any]],
                      review_state: dict[str, Any], *, status: str, done: dict[str, Any] | None) -> TaskRecord:
        from fleet_tui.engine.sanitize import capture_failure

        worktree = Path(task.worktree_path) if task.worktree_path else None
        try:
            diff = await c.parts.forge.diff(c.change_ref(task))
        except FleetError:
            diff = ""
        context = capture_failure(diff=diff, review_comments=comments, worktree=worktree)
        context["reason"] = "the review asked for changes" if status == "changes_requested" \
            else "the change does not meet the definition of done"
        metadata: dict[str, Any] = {"review": review_state}
        if done is not None:
            metadata["done"] = done
        moved = await c.move(task, S.REJECTED, TaskPatch(
            review_status=status, review_verdicts=stored, failure_reason="review_rejected",
            failure_context=context, metadata=metadata),
            actor=ACTOR, reason=f"review {status}: {len(comments)} comment(s)")
        await c.parts.notify(moved, "failed", f"attempt {task.retry_count + 1} rejected by review ({status})")
        return moved


def _clean(verdict: Verdict, task: TaskRecord) -> Verdict:
    """Verdicts are stored and shown: no secrets, no paths outside the worktree."""
    def clean(text: str) -> str:
        return sanitize(text, worktree=task.worktree_path)

    return Verdict(verdict.reviewer, verdict.focus, verdict.verdict, [clean(t) for t in verdict.comments],
                   clean(verdict.error) if verdict.error else None)


def _summary(outcome: ReviewOutcome) -> dict[str, Any]:
    return {"outcome": outcome.outcome, "approvals": outcome.approvals, "missing": list(outcome.missing)}
