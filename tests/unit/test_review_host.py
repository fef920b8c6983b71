"""The review pipeline drives a task only through its ReviewHost's flat collaborators (the
ledger's move and patch, a fresh read, the forge's diff, a notification): here all fakes."""

from __future__ import annotations

import time
from pathlib import Path
from datetime import UTC, datetime
from typing import Any

from fleet_tui.config import ReviewerSpec
from fleet_tui.domain.models import TaskPatch, TaskRecord, TaskType
from fleet_tui.domain.status import TaskStatus as S
from fleet_tui.engine.kit.bus import Event, Notice
from fleet_tui.engine.review.host import ReviewHost
from fleet_tui.engine.review.pipeline import ReviewPipeline
from fleet_tui.engine.review.reviewers.verdict import Verdict
from fleet_tui.infra.agents import builtin_profiles
from fleet_tui.infra.protocols import ChangeRef
from fleet_tui.infra.secrets import SecretsProvider

SPEC = ReviewerSpec(kind="builtin", focus="logic", name="logic")


def a_task(status: S, **fields: Any) -> TaskRecord:
    now = datetime.now(UTC)
    return TaskRecord(id="t-1", operator_id="op", status=status, version=1, description="fix it",
                      repo="/repo", base_branch="main", created_at=now, updated_at=now, **fields)


class FakeLedger:
    """The task as the ledger keeps it: each move and patch applied and kept."""

    def __init__(self, task: TaskRecord) -> None:
        self.task = task
        self.moves: list[tuple[S, str]] = []
        self.notified: list[tuple[str, str]] = []
        self.heard: list[Event] = []

    def _apply(self, patch: TaskPatch | None, **more: Any) -> TaskRecord:
        fields = patch.model_dump(exclude_unset=True) if patch else {}
        self.task = self.task.model_copy(update={**fields, **more, "version": self.task.version + 1})
        return self.task

    async def move(self, task: TaskRecord, target: S, patch: TaskPatch | None = None, *, actor: str,
                   reason: str | None = None) -> TaskRecord:
        self.moves.append((target, actor))
        return self._apply(patch, status=target)

    async def patch(self, task: TaskRecord, patch: TaskPatch) -> TaskRecord:
        return self._apply(patch)

    async def get(self, task_id: str) -> TaskRecord:
        return self.task

    async def audit(self, task: TaskRecord, action: str, detail: dict[str, Any]) -> None:
        pass

    async def notify(self, task: TaskRecord, kind: str, summary: str, *, dedup_key: str | None = None) -> None:
        self.notified.append((kind, summary))


class FakeForge:
    async def diff(self, ref: ChangeRef) -> str:
        return f"diff --git a/{ref.branch} b/{ref.branch}\n"


def host_of(ledger: FakeLedger) -> ReviewHost:
    profiles = builtin_profiles()
    return ReviewHost(move=ledger.move, patch=ledger.patch, audit=ledger.audit, get_task=ledger.get,
                      notify=ledger.notify, publish=ledger.heard.append,
                      change_ref=lambda t: ChangeRef(repo=Path(t.repo), branch=t.branch or "b", base=t.base_branch),
                      forge=FakeForge(),  # type: ignore[arg-type]
                      profile=lambda name: profiles[name or "demo"], secrets=SecretsProvider({}))


class AskingForChanges:
    name, focus = "logic", "logic"

    def __init__(self) -> None:
        self.diffs: list[str] = []

    async def review(self, diff: str, task: TaskRecord) -> Verdict:
        self.diffs.append(diff)
        return Verdict("logic", "logic", "request_changes", ["handle the empty list"])


async def test_a_review_opens_stores_its_verdict_and_rejects_through_the_host() -> None:
    runner = AskingForChanges()
    pipeline = ReviewPipeline([SPEC], runner_factory=lambda spec, host: runner)
    ledger = FakeLedger(a_task(S.PR_CREATED, branch="fleet/t-1"))
    host = host_of(ledger)

    opened = await pipeline.open(host, ledger.task, ["logic"])
    assert opened.status == S.REVIEWING and ledger.moves == [(S.REVIEWING, "review")]
    verdict = await pipeline.review(host, opened, SPEC)
    assert verdict.verdict == "request_changes" and runner.diffs == ["diff --git a/fleet/t-1 b/fleet/t-1\n"]
    assert [v["reviewer"] for v in ledger.task.review_verdicts] == ["logic"]  # stored through the patch

    result = await pipeline.conclude(host, ledger.task, ["logic"])
    assert result["status"] == "rejected" and ledger.task.failure_reason == "review_rejected"
    assert ledger.notified == [("failed", "attempt 1 rejected by review (changes_requested)")]
    assert "diff --git" in ledger.task.failure_context["diff"]  # the forge's diff, through the host


async def test_a_review_past_its_time_is_ready_with_a_warning_told_to_the_faces() -> None:
    pipeline = ReviewPipeline([SPEC], timeout_s=1, approvals_needed=1, done_checks={TaskType.FEATURE: []})
    ledger = FakeLedger(a_task(S.REVIEWING, task_type="feature", metadata={"review": {
        "attempt": 1, "started_at": time.time() - 60, "reviewers": ["logic"], "timeout_s": 1}}))
    result = await pipeline.conclude(host_of(ledger), ledger.task, ["logic"])
    assert result["status"] == "ready" and ledger.moves == [(S.READY, "review")]
    assert [type(e) for e in ledger.heard] == [Notice] and "timed out" in ledger.heard[0].message  # type: ignore[attr-defined]
