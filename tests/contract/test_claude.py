"""Claude Code (the pinned @anthropic-ai/claude-code) through the shipped profile, against a
loopback Anthropic Messages API with SSE: the contract every shipped profile must keep."""

from __future__ import annotations

import asyncio
from datetime import datetime, UTC
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
    assert waits_until > datetime.now(UTC)
    # until the reset, routing sends other work elsewhere (the account is the fleet's)
    from fleet_tui.domain.models import SpawnRequest
    from tests.fixtures.engine import operator

    nxt = await run.conductor.parts.agents.route(operator(), SpawnRequest(description="next", repo=str(git_repo)))
    assert nxt.agent != AGENT and any(s.startswith(f"{AGENT}/opus: usage limited until") for s in nxt.skipped), nxt


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
    from fleet_tui.domain.models import SYSTEM

    return SYSTEM


DENIED = "curl -s http://127.0.0.1:9/"


@pytest.fixture
async def refused_run(make_conductor: Any, git_repo: Path, claude_env: Any):
    """A claude task whose first command (outside git and the tests) the policy refused: it stopped and asked (as a model
    does when told so), and the task waits for a person. The fake stays up for what follows."""
    from tests.contract.harness import drive
    from tests.fakes.model_api import FakeModelApi, Step

    def script(*rest: Step) -> list[Step]:
        return [Step(command=DENIED), *rest, *agent_script(test_command=TEST_COMMAND, commit=True)]

    async def start(*rest: Step) -> Any:
        api = FakeModelApi(script(*rest), stop_when_refused=True).start()
        apis.append(api)
        claude_env(api.url)
        return await drive(make_conductor, git_repo, agent=AGENT, api=api)

    apis: list[Any] = []
    yield start
    for api in apis:
        api.stop()


async def _waits_for_the_denied_command(run: Any) -> None:
    from tests.contract.harness import fleet_cli

    assert run.task.status == S.FAILED and run.task.needs_input, run.task.failure_context
    assert run.task.failure_reason == "permission_denied"
    # nothing broader than git and the tests: denied at once (nobody to ask), shown in the log
    assert f"[fleet] denied Bash: {DENIED}" in run.task.failure_context["error_output"]
    (asked,) = run.task.failure_context["asked"]
    assert asked == {"tool": "Bash", "target": DENIED, "grant": f"Bash({DENIED})"}
    await asyncio.sleep(3 * run.conductor.settings.monitor.interval_s)  # cycles pass: no retry
    detail = await run.conductor.detail(_system(), run.task.id)
    assert detail.task.status == S.FAILED and detail.task.retry_count == 0
    shown = fleet_cli(run, "show", run.task.id)
    assert f"retry {run.task.id} --allow 'Bash({DENIED})'" in shown.stdout, shown


async def test_a_refused_command_waits_for_a_person_who_grants_it_for_the_task(refused_run: Any) -> None:
    from tests.contract.harness import fleet_cli
    from tests.e2e.test_conductor_flow import wait_for

    run = await refused_run()
    await _waits_for_the_denied_command(run)
    granted = fleet_cli(run, "retry", run.task.id, "--allow", f"Bash({DENIED})")
    assert granted.returncode == 0, granted.stderr
    task = await wait_for(run.conductor, run.task.id, lambda t: t.status in (S.READY, S.FAILED, S.ABANDONED), 120)
    assert task.status == S.READY, task.failure_context
    assert task.retry_count == 0 and not task.needs_input  # refused, not failed: no retry spent
    assert task.metadata["granted"] == [f"Bash({DENIED})"]
    assert "permission_granted" in await run.audit_actions()
    shown = "\n".join(await run.conductor.logs(_system(), run.task.id, 400))
    assert f"tool Bash: {DENIED}" in shown and "[fleet] denied" not in shown


async def test_a_person_answers_the_agent_and_its_session_goes_on(refused_run: Any) -> None:
    from tests.contract.harness import answer_and_finish
    from tests.fakes.model_api import Step

    run = await refused_run(Step(text="(never said: the refusal ends the first run)"))
    await _waits_for_the_denied_command(run)
    await answer_and_finish(run, DENIED)
