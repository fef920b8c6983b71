"""Claude Code (the pinned @anthropic-ai/claude-code) through the shipped profile, against a
loopback Anthropic Messages API with SSE: the contract every shipped profile must keep."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from fleet_tui.domain.status import TaskStatus
from tests.contract.harness import TEST_COMMAND, agent_home, prepare_env, run_agent
from tests.fakes.model_api import BAD_KEY, OUTAGE, USAGE, USAGE_LIMIT, agent_script

S = TaskStatus
AGENT = "claude"


@pytest.fixture
def claude_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, agent_bin: Path):
    def setup(api_url: str) -> None:
        prepare_env(monkeypatch, agent_bin, agent_home(tmp_path), {
            "ANTHROPIC_BASE_URL": api_url, "ANTHROPIC_API_KEY": "sk-ant-test-0000"})
    return setup


async def test_claude_commits_its_change_and_the_task_is_ready_with_usage(
        make_conductor: Any, git_repo: Path, claude_env: Any) -> None:
    run = await run_agent(make_conductor, git_repo, claude_env,
                          agent_script(test_command=TEST_COMMAND, commit=True), agent=AGENT)
    assert run.task.status == S.READY, run.task.failure_context
    assert "conductor_committed" not in await run.audit_actions()  # claude committed itself
    (execution,) = await run.executions()
    assert execution["exit_code"] == 0
    assert execution["input_tokens"] and execution["input_tokens"] >= USAGE["input_tokens"]
    assert execution["output_tokens"] and execution["cached_tokens"] and execution["total_tokens"]
    assert execution["cost_usd"] is not None and execution["session_id"]
    lines = await run.conductor.logs(_system(), run.task.id, 400)
    shown = "\n".join(lines)
    assert "tool Bash: git commit -m 'Add hello'" in shown and "tool Write:" in shown
    assert not any(line.startswith('{"type"') for line in lines)  # readable, not raw JSON


async def test_claude_edits_without_committing_and_the_conductor_commits(
        make_conductor: Any, git_repo: Path, claude_env: Any) -> None:
    run = await run_agent(make_conductor, git_repo, claude_env,
                          agent_script(test_command=TEST_COMMAND, commit=False), agent=AGENT)
    assert run.task.status == S.READY, run.task.failure_context
    assert "conductor_committed" in await run.audit_actions()
    # the test command ran under the profile's permission policy (not denied)
    assert "[fleet] denied" not in "\n".join(await run.conductor.logs(_system(), run.task.id, 400))


@pytest.mark.parametrize(("scenario", "reason"), [(OUTAGE, "api_unavailable"), (BAD_KEY, "auth")])
async def test_claude_failures_end_with_their_own_reason(
        make_conductor: Any, git_repo: Path, claude_env: Any, scenario: str, reason: str) -> None:
    run = await run_agent(make_conductor, git_repo, claude_env,
                          agent_script(test_command=TEST_COMMAND, commit=True), scenario=scenario,
                          agent=AGENT, profile_changes={"env": {**_env(), "CLAUDE_CODE_MAX_RETRIES": "0"}})
    assert run.task.failure_reason == reason, run.task.failure_context


async def test_claude_usage_limit_waits_for_the_reset_without_spending_a_retry(
        make_conductor: Any, git_repo: Path, claude_env: Any) -> None:
    run = await run_agent(make_conductor, git_repo, claude_env,
                          agent_script(test_command=TEST_COMMAND, commit=True), scenario=USAGE_LIMIT,
                          agent=AGENT, max_retries=1, until=(S.RETRYING, S.ABANDONED),
                          profile_changes={"env": {**_env(), "CLAUDE_CODE_MAX_RETRIES": "0"}})
    assert run.task.status == S.RETRYING and run.task.failure_reason == "usage_limited", run.task.failure_context
    assert run.task.retry_count == 0
    waits_until = datetime.fromisoformat(run.task.metadata["retry_at"])
    assert waits_until > datetime.now(timezone.utc)


async def test_a_flag_the_cli_no_longer_accepts_is_cli_changed_and_not_retried(
        make_conductor: Any, git_repo: Path, claude_env: Any) -> None:
    from fleet_tui.infra.agents import builtin_profiles

    command = [*builtin_profiles()[AGENT].command[:-1], "--removed-in-this-version", "{model_args}"]
    run = await run_agent(make_conductor, git_repo, claude_env,
                          agent_script(test_command=TEST_COMMAND, commit=True), agent=AGENT, max_retries=2,
                          profile_changes={"command": command}, until=(S.ABANDONED,))
    assert run.task.failure_reason == "cli_changed" and run.task.retry_count == 0, run.task.failure_context
    assert not run.api.requests  # it never reached the model


def _env() -> dict[str, str]:
    from tests.contract.harness import profile_env

    return profile_env(AGENT)


def _system():
    from fleet_tui.engine.conductor import SYSTEM

    return SYSTEM


async def test_claude_may_run_nothing_broader_than_git_and_the_tests(
        make_conductor: Any, git_repo: Path, claude_env: Any) -> None:
    """A command outside the policy is denied at once (nobody to ask): permission_denied."""
    from tests.fakes.model_api import Step

    run = await run_agent(make_conductor, git_repo, claude_env,
                          [Step(command="curl -s http://127.0.0.1:9/"), Step(text="I could not fetch it.")],
                          agent=AGENT)
    assert run.task.failure_reason == "permission_denied", run.task.failure_context
    assert "[fleet] denied Bash: curl -s http://127.0.0.1:9/" in run.task.failure_context["error_output"]
