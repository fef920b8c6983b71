"""The review pipeline on real parts: PostgreSQL, git, tmux, the demo agent as the coder and
as an agent-profile reviewer, the built-in reviewers, the local forge with a real CI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fleet_tui.config import ReviewerSpec
from fleet_tui.domain.models import SpawnRequest
from fleet_tui.domain.status import TaskStatus
from fleet_tui.domain.models import SYSTEM
from fleet_tui.engine.conductor import Conductor
from fleet_tui.store import executions
from tests.e2e.test_conductor_flow import statuses_seen, wait_for
from tests.fixtures.engine import operator
from tests.integration.test_http_reviewers import api, server  # noqa: F401  (loopback fake API)

S = TaskStatus
SECURITY = ReviewerSpec(kind="builtin", focus="security", name="sec")
LOGIC = ReviewerSpec(kind="builtin", focus="logic", name="logic")
DEMO = ReviewerSpec(kind="agent", focus="architecture", name="demo-arch", profile="demo",
                    preamble="FLEET-DEMO: review")


async def reviewing_conductor(make_conductor: Any, reviewers: list[ReviewerSpec], **changes: Any) -> Conductor:
    conductor = await make_conductor(review__enabled=True, review__reviewers=reviewers, **changes)
    assert conductor.parts.reviews is not None and conductor.parts.reviews.labels == [r.label for r in reviewers]
    await conductor.start()
    return conductor


def by_reviewer(verdicts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {v["reviewer"]: v for v in verdicts}


async def test_all_approve_makes_the_task_ready_with_verdicts_and_done_state(
        make_conductor: Any, git_repo: Path) -> None:
    conductor = await reviewing_conductor(make_conductor, [SECURITY, LOGIC, DEMO])
    op = operator()
    spawned = await conductor.spawn(op, SpawnRequest(description="document the flag", repo=str(git_repo)))
    task = await wait_for(conductor, spawned.task.id, lambda t: t.status in (S.READY, S.REJECTED), 45)
    assert task.status == S.READY, task.review_verdicts
    assert task.review_status == "approved"
    verdicts = by_reviewer(task.review_verdicts)
    assert set(verdicts) == {"sec", "logic", "demo-arch"}
    assert {v["verdict"] for v in verdicts.values()} == {"approve"}
    assert all(v["attempt"] == 1 for v in verdicts.values())
    done = task.metadata["done"]
    assert done["holds"] is True
    assert set(done["checks"]) == {"change_exists", "synced_with_base", "ci_passing", "approvals"}
    assert done["checks"]["approvals"]["detail"] == "3 of 2 approvals"
    seen = await statuses_seen(conductor, task.id)
    assert seen[-3:] == ["pr_created", "reviewing", "ready"]
    detail = await conductor.detail(op, task.id)  # what the faces show
    assert len(detail.task.review_verdicts) == 3


async def test_request_changes_rejects_and_the_next_prompt_carries_the_comments(
        make_conductor: Any, git_repo: Path) -> None:
    # the demo reviewer asks for changes whenever the diff adds its marker; the worktree is
    # reused by the retry, so the marker stays and the budget runs out
    conductor = await reviewing_conductor(make_conductor, [SECURITY, LOGIC, DEMO])
    op = operator()
    spawned = await conductor.spawn(op, SpawnRequest(
        description="add notes\nFLEET-DEMO: append notes.md FLEET-REVIEW-REJECT in here",
        repo=str(git_repo), max_retries=1))
    task = await wait_for(conductor, spawned.task.id, lambda t: t.status == S.ABANDONED, 60)
    assert task.retry_count == 1
    assert task.review_status == "changes_requested"
    verdicts = by_reviewer(task.review_verdicts)
    assert verdicts["demo-arch"]["verdict"] == "request_changes"
    assert verdicts["sec"]["verdict"] == "approve"
    assert task.failure_reason == "review_rejected"
    runs = await executions.list_for_task(conductor.parts.db, task.id, operator=None)
    assert [r["attempt"] for r in runs] == [1, 2]
    assert "adds the marker FLEET-REVIEW-REJECT" not in runs[0]["prompt"]
    assert "Reviewer: demo-arch: the change adds the marker FLEET-REVIEW-REJECT; remove it" in runs[1]["prompt"]
    seen = await statuses_seen(conductor, task.id)
    assert seen.count("rejected") == 2 and seen.count("reviewing") == 2


async def test_a_reviewer_past_the_timeout_leaves_the_task_ready_with_a_warning(
        make_conductor: Any, git_repo: Path) -> None:
    slow = ReviewerSpec(kind="agent", focus="architecture", name="slow", profile="demo",
                        preamble="FLEET-DEMO: review\nFLEET-DEMO: review-sleep 30")
    conductor = await reviewing_conductor(make_conductor, [SECURITY, LOGIC, slow], review__timeout_s=2.0)
    spawned = await conductor.spawn(operator(), SpawnRequest(description="tidy docs", repo=str(git_repo)))
    task = await wait_for(conductor, spawned.task.id, lambda t: t.status in (S.READY, S.REJECTED), 45)
    assert task.status == S.READY
    assert task.review_status == "warning: timed out"
    assert "without a verdict from slow" in task.metadata["review"]["warning"]
    verdicts = by_reviewer(task.review_verdicts)
    assert verdicts["slow"]["verdict"] == "comment"
    assert verdicts["slow"]["error"] == "no verdict within 2s"
    assert task.metadata["done"]["checks"]["approvals"]["ok"] is True
    assert not conductor.parts.reviews.running(task.id)  # the slow reviewer was stopped


async def test_a_missing_reviewer_counts_as_a_comment(make_conductor: Any, git_repo: Path) -> None:
    ghost = ReviewerSpec(kind="agent", focus="architecture", name="ghost", profile="no-such-agent")
    conductor = await reviewing_conductor(make_conductor, [SECURITY, LOGIC, ghost])
    spawned = await conductor.spawn(operator(), SpawnRequest(description="small docs fix", repo=str(git_repo)))
    task = await wait_for(conductor, spawned.task.id, lambda t: t.status in (S.READY, S.REJECTED), 45)
    verdicts = by_reviewer(task.review_verdicts)
    assert verdicts["ghost"]["verdict"] == "comment"
    assert verdicts["ghost"]["error"].startswith("reviewer missing: unknown agent profile 'no-such-agent'")
    # two approvals are what the definition of done asks for: ready, with comments
    assert task.status == S.READY and task.review_status == "approved_with_comments"


async def test_too_few_approvals_reject_with_the_definition_of_done(make_conductor: Any, git_repo: Path) -> None:
    ghost = ReviewerSpec(kind="http", focus="logic", name="ghost-api", provider="nowhere", model="m")
    conductor = await reviewing_conductor(make_conductor, [SECURITY, ghost], review__approvals=2)
    spawned = await conductor.spawn(operator(), SpawnRequest(
        description="docs again", repo=str(git_repo), max_retries=0))
    task = await wait_for(conductor, spawned.task.id, lambda t: t.status in (S.READY, S.ABANDONED), 45)
    assert task.status == S.ABANDONED
    assert task.review_status == "not_done"
    assert task.metadata["done"]["holds"] is False
    assert task.metadata["done"]["checks"]["approvals"] == {"ok": False, "detail": "1 of 2 approvals"}
    assert "definition of done: approvals: 1 of 2 approvals" in task.failure_context["review_comments"]


async def test_reviewers_restart_after_a_conductor_restart(make_conductor: Any, git_repo: Path) -> None:
    slow = ReviewerSpec(kind="agent", focus="architecture", name="demo-arch", profile="demo",
                        preamble="FLEET-DEMO: review\nFLEET-DEMO: review-sleep 1.5")
    first = await reviewing_conductor(make_conductor, [SECURITY, slow])
    op = operator()
    spawned = await first.spawn(op, SpawnRequest(description="restart me", repo=str(git_repo)))
    task = await wait_for(first, spawned.task.id, lambda t: t.status == S.REVIEWING, 45)
    await first.shutdown()
    await first.parts.reviews.shutdown()  # the reviewers die with the conductor
    task = await first.registry.get(task.id, operator=SYSTEM)
    assert "demo-arch" not in {v["reviewer"] for v in task.review_verdicts}
    # the second conductor on the same fleet finds the task reviewing with no one reviewing it
    second = await reviewing_conductor(make_conductor, [SECURITY, slow], same_db=first)
    task = await wait_for(second, task.id, lambda t: t.status in (S.READY, S.REJECTED), 45)
    assert task.status == S.READY
    assert {v["reviewer"] for v in task.review_verdicts} == {"sec", "demo-arch"}
    refreshed = await second.registry.get(task.id, operator=SYSTEM)
    assert refreshed.metadata["review"]["attempt"] == 1


async def test_an_http_reviewer_gets_its_key_from_the_secrets_provider(
        make_conductor: Any, git_repo: Path, api: Any) -> None:
    from fleet_tui.infra.secrets import SecretsProvider
    from tests.integration.test_http_reviewers import KEY

    fake, base = api
    remote = ReviewerSpec(kind="http", focus="logic", name="claude-api", provider="anthropic",
                          model="claude-test", base_url=base, key_env="FLEET_TEST_REVIEW_KEY")
    conductor = await make_conductor(review__enabled=True, review__reviewers=[SECURITY, remote])
    conductor.parts.secrets = SecretsProvider({"FLEET_TEST_REVIEW_KEY": KEY})
    await conductor.start()
    spawned = await conductor.spawn(operator(), SpawnRequest(
        description="remote review", repo=str(git_repo), max_retries=0))
    task = await wait_for(conductor, spawned.task.id, lambda t: t.status == S.ABANDONED, 45)
    assert [r["headers"]["x-api-key"] for r in fake.requests] == [KEY]
    assert "diff --git" in fake.requests[0]["body"]["messages"][0]["content"]
    verdicts = by_reviewer(task.review_verdicts)
    assert verdicts["claude-api"]["verdict"] == "request_changes"
    assert "claude-api: src/a.py:3: off-by-one in the loop" in task.failure_context["review_comments"]
    detail = await conductor.detail(SYSTEM, task.id)
    issued = [row["detail"] for row in detail.audit if row["action"] == "secrets_issued"]
    assert {"names": ["FLEET_TEST_REVIEW_KEY"], "reviewer": "claude-api"} in issued
    assert KEY not in str(detail.task.model_dump()) + str(detail.audit)


# A reviewer CLI that says what it found in its environment as its comment.
ENV_SAYING_REVIEWER = ("import json, os, sys; sys.stdin.read(); print(json.dumps({'verdict': 'approve', "
                       "'comments': ['telemetry=' + os.environ.get('FLEET_PROBE_TELEMETRY', 'unset')]}))")


async def test_an_agent_reviewer_runs_with_its_profiles_fixed_environment(
        make_conductor: Any, git_repo: Path, tmp_path: Path) -> None:
    """Telemetry and update checks are switched off in a profile's fixed environment; the
    agent got it, its reviewer runs of the same CLI did not (they phoned home)."""
    import sys

    script = tmp_path / "reviewer.py"  # a file: braces in argv are the profile's placeholders
    script.write_text(ENV_SAYING_REVIEWER)
    profile = {"command": [sys.executable, str(script)], "prompt_via": "stdin",
               "env": {"FLEET_PROBE_TELEMETRY": "off-{task_id}"}}
    reviewer = ReviewerSpec(kind="agent", focus="architecture", name="env", profile="envcheck")
    conductor = await reviewing_conductor(make_conductor, [SECURITY, reviewer],
                                          agents__profiles={"envcheck": profile})
    spawned = await conductor.spawn(operator(), SpawnRequest(description="a change to review", repo=str(git_repo)))
    task = await wait_for(conductor, spawned.task.id, lambda t: t.status in (S.READY, S.REJECTED), 45)
    comments = by_reviewer(task.review_verdicts)["env"]["comments"]
    assert comments == [f"telemetry=off-review-{task.id}"], comments
