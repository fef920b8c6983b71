"""End to end with the default review pipeline (builtin security, builtin logic, the demo
agent as the architecture reviewer): tasks go from proposed to ready, and a change with a
secret is rejected, retried with the reviewer's comment, and then becomes ready."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fleet_tui.config import Settings
from fleet_tui.domain.models import SpawnRequest
from fleet_tui.domain.status import TaskStatus
from fleet_tui.engine.conductor import Conductor
from fleet_tui.engine.review.pipeline import ReviewPipeline
from fleet_tui.infra.demo_agent import FAKE_AWS_KEY
from fleet_tui.store import executions
from tests.e2e.test_conductor_flow import statuses_seen, wait_for
from tests.fixtures.engine import operator

S = TaskStatus


async def default_review_conductor(make_conductor: Any) -> Conductor:
    conductor = await make_conductor(review__enabled=True)  # build_parts wires the defaults
    assert isinstance(conductor.parts.reviews, ReviewPipeline)
    assert conductor.parts.reviews.labels == [spec.label for spec in Settings().review.reviewers]
    await conductor.start()
    return conductor


async def test_a_task_goes_from_proposed_to_ready_with_three_verdicts(make_conductor: Any, git_repo: Path) -> None:
    conductor = await default_review_conductor(make_conductor)
    op = operator()
    spawned = await conductor.spawn(op, SpawnRequest(description="write the changelog entry", repo=str(git_repo)))
    task = await wait_for(conductor, spawned.task.id, lambda t: t.status in (S.READY, S.REJECTED), 45)
    assert task.status == S.READY
    seen = await statuses_seen(conductor, task.id)
    assert seen[-5:] == ["spawning", "running", "pr_created", "reviewing", "ready"]
    detail = await conductor.detail(op, task.id)
    verdicts = {v["reviewer"]: v["verdict"] for v in detail.task.review_verdicts}
    assert verdicts == {"builtin-security": "approve", "builtin-logic": "approve", "demo-architecture": "approve"}
    assert detail.task.metadata["done"]["holds"] is True
    assert any(row["action"] == "prompt_built" for row in detail.audit)


async def test_a_leaked_secret_is_rejected_retried_with_the_comment_and_then_ready(
        make_conductor: Any, git_repo: Path) -> None:
    conductor = await default_review_conductor(make_conductor)
    op = operator()
    spawned = await conductor.spawn(op, SpawnRequest(
        description="add the AWS config\nFLEET-DEMO: write-once-secret config.py", repo=str(git_repo)))
    task = await wait_for(conductor, spawned.task.id, lambda t: t.status in (S.READY, S.ABANDONED), 60)
    assert task.status == S.READY, task.failure_context
    assert task.retry_count == 1
    seen = await statuses_seen(conductor, task.id)
    assert seen.index("rejected") < seen.index("retrying") < len(seen) - 1 and seen[-1] == "ready"
    runs = await executions.list_for_task(conductor.parts.db, task.id, operator=None)
    assert [r["attempt"] for r in runs] == [1, 2]
    comment = "builtin-security: config.py:1: a credential is added; use the secrets provider"
    assert comment not in runs[0]["prompt"]
    assert comment in runs[1]["prompt"]
    # the secret itself never reaches a prompt, a verdict or the failure context
    assert FAKE_AWS_KEY not in runs[1]["prompt"]
    assert FAKE_AWS_KEY not in str(task.review_verdicts) + str(task.failure_context)
    final = {v["reviewer"]: v["verdict"] for v in task.review_verdicts}
    assert final["builtin-security"] == "approve"
    assert final["builtin-logic"] == "comment"  # config.py changed without tests: a remark only
    assert task.review_status == "approved_with_comments"
    diff = await conductor.diff(op, task.id)
    assert "os.environ.get" in diff and FAKE_AWS_KEY not in diff
