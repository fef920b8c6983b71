"""The seeded default routes drive the review pipeline and the retry policy on a real
conductor (real database, real git repo, built-in reviewers); an operator's override
removing the architecture reviewer takes effect once the cache expires, without a restart."""

from __future__ import annotations

from pathlib import Path

from fleet_tui.domain.models import CIStatus, TaskPatch, TaskRecord
from fleet_tui.domain.status import TaskStatus
from fleet_tui.engine.attempts.retry import RETRY_AT_KEY
from fleet_tui.engine.events.defaults import DEFAULT_SEQUENCES
from fleet_tui.engine.session import build_router
from tests.fixtures.engine import operator
from tests.fixtures.gitrepo import git
from tests.integration.router_harness import Clock

S = TaskStatus


async def task_with_change(c, op, repo: Path, files: dict[str, str]) -> TaskRecord:
    task = await c.registry.create(op, description="add a thing", repo=str(repo), base_branch="main",
                                   task_type="feature")
    branch = f"fleet/{task.id}"
    git(repo, "checkout", "-q", "-b", branch)
    for name, text in files.items():
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "change")
    git(repo, "checkout", "-q", "main")
    task = await c.move(task, S.SPAWNING, TaskPatch(branch=branch), actor="test")
    task = await c.move(task, S.RUNNING, actor="test")
    return await c.move(task, S.PR_CREATED, TaskPatch(ci_status=CIStatus.PASSING), actor="test")


CLEAN = {"lib.py": "def add(a, b):\n    return a + b\n", "test_lib.py": "def test_add():\n    assert 1\n"}
LEAKY = {"conf.py": 'API_KEY = "sk-live-9f8e7d6c5b4a39281706f5e4d3c2b1a0"\n', "test_conf.py": "x = 1\n"}


async def notifications_of(c, task_id: str) -> list[str]:
    async with c.parts.db.system() as conn:
        rows = await conn.fetch("SELECT type FROM fleet_notifications WHERE task_id = $1 ORDER BY id", task_id)
    return [r["type"] for r in rows]


async def test_review_pipeline_from_seeded_routes_then_override_drops_architecture(
        make_conductor, git_repo: Path) -> None:
    c = await make_conductor()
    op = operator()
    clock = Clock()
    service = build_router(c, clock=clock)
    task = await task_with_change(c, op, git_repo, CLEAN)
    result = await service.dispatch("task.pr_created", {"task_id": task.id, "ci_status": "passing"},
                                    operator_id=op.id)
    assert result is not None and result.status == "succeeded", result.error
    done = await c.registry.get(task.id, operator=op)
    assert done.status == S.READY and done.review_status == "approved"
    assert [v["reviewer"] for v in done.review_verdicts] == [
        "builtin-security", "builtin-logic", "builtin-architecture"]

    # the operator drops the architecture reviewer, from another process (its own cache)
    pipeline = next(s for s in DEFAULT_SEQUENCES if s["name"] == "review_pipeline")
    trimmed = {**pipeline, "steps": [s for s in pipeline["steps"] if s["name"] != "review_architecture"]}
    await build_router(c).admin.upsert(op, "sequence", trimmed)

    second = await task_with_change(c, op, git_repo, CLEAN)
    await service.dispatch("task.pr_created", {"task_id": second.id, "ci_status": "passing"}, operator_id=op.id)
    assert len((await c.registry.get(second.id, operator=op)).review_verdicts) == 3  # cached policy
    clock.now += 301
    third = await task_with_change(c, op, git_repo, CLEAN)
    await service.dispatch("task.pr_created", {"task_id": third.id, "ci_status": "passing"}, operator_id=op.id)
    reviewed = await c.registry.get(third.id, operator=op)
    assert reviewed.status == S.READY
    assert [v["reviewer"] for v in reviewed.review_verdicts] == ["builtin-security", "builtin-logic"]


async def test_rejected_review_hands_off_a_notification_then_retry_policy(make_conductor, git_repo: Path) -> None:
    c = await make_conductor()
    op = operator()
    service = build_router(c)
    task = await task_with_change(c, op, git_repo, LEAKY)
    result = await service.dispatch("task.pr_created", {"task_id": task.id, "ci_status": "passing"},
                                    operator_id=op.id)
    assert [r.sequence for r in result.chain()] == ["review_pipeline", "notify_rejected"]
    rejected = await c.registry.get(task.id, operator=op)
    assert rejected.status == S.REJECTED and rejected.failure_context["review_comments"]
    assert "rejected" in await notifications_of(c, task.id)

    retried = await service.dispatch("task.rejected", {"task_id": task.id}, operator_id=op.id)
    assert retried.steps["retry_or_abandon"].output["decision"] == "retry"
    now = await c.registry.get(task.id, operator=op)
    assert now.status == S.RETRYING and now.retry_count == 1 and RETRY_AT_KEY in now.metadata


async def test_failed_task_with_spent_budget_is_abandoned_by_the_retry_route(make_conductor, git_repo: Path) -> None:
    c = await make_conductor()
    op = operator()
    task = await c.registry.create(op, description="x", repo=str(git_repo), base_branch="main",
                                   task_type="bug_fix", max_retries=0)
    task = await c.move(task, S.SPAWNING, actor="test")
    await c.move(task, S.FAILED, TaskPatch(failure_reason="agent_exit", failure_context={"exit_code": 1}),
                 actor="test")
    result = await build_router(c).dispatch("task.failed", {"task_id": task.id}, operator_id=op.id)
    assert result.steps["capture"].output["classification"] == "agent_exit"
    assert (await c.registry.get(task.id, operator=op)).status == S.ABANDONED
    assert "abandoned" in await notifications_of(c, task.id)
