"""Codex CLI (the pinned @openai/codex) through the shipped profile, against a loopback OpenAI
Responses API with SSE, reached the way codex is routed elsewhere: a provider in its config.
Its workspace-write sandbox keeps .git read-only, so the conductor commits what it leaves."""

from __future__ import annotations

from datetime import datetime, UTC
from pathlib import Path
from typing import Any

import pytest

from fleet_tui.domain.status import TaskStatus
from fleet_tui.infra.agents import builtin_profiles
from tests.contract.harness import TEST_COMMAND, agent_home, prepare_env, run_agent
from tests.fakes.model_api import BAD_KEY, OUTAGE, USAGE, USAGE_LIMIT, agent_script

S = TaskStatus
AGENT = "codex"


def codex_config(home: Path, api_url: str) -> None:
    """What a user routing codex elsewhere writes: a provider, here without retries."""
    (home / ".codex").mkdir(parents=True, exist_ok=True)
    (home / ".codex" / "config.toml").write_text(
        'model_provider = "fleetfake"\n'
        "[model_providers.fleetfake]\n"
        'name = "loopback fake"\n'
        f'base_url = "{api_url}/v1"\n'
        'env_key = "OPENAI_API_KEY"\n'
        'wire_api = "responses"\n'
        "request_max_retries = 0\n"
        "stream_max_retries = 0\n")


@pytest.fixture
def codex_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, agent_bin: Path):
    def setup(api_url: str) -> None:
        home = agent_home(tmp_path)
        codex_config(home, api_url)
        prepare_env(monkeypatch, agent_bin, home, {"OPENAI_API_KEY": "sk-test-0000"})
    return setup


@pytest.mark.parametrize("commit", [True, False], ids=["asks-to-commit", "leaves-edits"])
async def test_codex_change_reaches_ready_through_the_conductors_commit(
        make_conductor: Any, git_repo: Path, codex_env: Any, commit: bool) -> None:
    run = await run_agent(make_conductor, git_repo, codex_env,
                          agent_script(test_command=TEST_COMMAND, commit=commit), agent=AGENT)
    assert run.task.status == S.READY, run.task.failure_context
    assert "conductor_committed" in await run.audit_actions()
    (execution,) = await run.executions()
    assert execution["exit_code"] == 0 and execution["session_id"]
    assert execution["input_tokens"] >= USAGE["input_tokens"] and execution["cached_tokens"]
    assert execution["output_tokens"] and execution["total_tokens"]
    assert execution["cost_usd"] and execution["cost_usd"] > 0  # codex reports none: priced
    shown = "\n".join(await run.conductor.logs(_system(), run.task.id, 400))
    assert "tool shell:" in shown and TEST_COMMAND.split()[0] in shown


@pytest.mark.parametrize(("scenario", "reason"), [(OUTAGE, "api_unavailable"), (BAD_KEY, "auth")])
async def test_codex_failures_end_with_their_own_reason(
        make_conductor: Any, git_repo: Path, codex_env: Any, scenario: str, reason: str) -> None:
    run = await run_agent(make_conductor, git_repo, codex_env,
                          agent_script(test_command=TEST_COMMAND, commit=True), scenario=scenario,
                          agent=AGENT)
    assert run.task.failure_reason == reason, run.task.failure_context


async def test_codex_usage_limit_waits_for_the_reset_without_spending_a_retry(
        make_conductor: Any, git_repo: Path, codex_env: Any) -> None:
    run = await run_agent(make_conductor, git_repo, codex_env,
                          agent_script(test_command=TEST_COMMAND, commit=True), scenario=USAGE_LIMIT,
                          agent=AGENT, max_retries=1, until=(S.RETRYING, S.ABANDONED))
    assert run.task.status == S.RETRYING and run.task.failure_reason == "usage_limited", run.task.failure_context
    assert run.task.retry_count == 0
    assert datetime.fromisoformat(run.task.metadata["retry_at"]) > datetime.now(UTC)


async def test_codex_removed_flag_is_cli_changed_and_not_retried(
        make_conductor: Any, git_repo: Path, codex_env: Any) -> None:
    command = ["codex", "exec", "--full-auto", *builtin_profiles()[AGENT].command[2:]]  # removed in 0.16x
    run = await run_agent(make_conductor, git_repo, codex_env,
                          agent_script(test_command=TEST_COMMAND, commit=True), agent=AGENT, max_retries=2,
                          profile_changes={"command": command}, until=(S.ABANDONED,))
    assert run.task.failure_reason == "cli_changed" and run.task.retry_count == 0, run.task.failure_context
    assert not run.api.requests


def _system():
    from fleet_tui.domain.models import SYSTEM

    return SYSTEM


async def test_codex_with_its_api_unreachable_is_stopped_as_api_unavailable(
        make_conductor: Any, git_repo: Path, codex_env: Any) -> None:
    """codex waits for an API it cannot connect to forever ("Reconnecting... waiting for
    network", even with no retries configured): the launcher stops it after the wait
    (FLEET_NETWORK_WAIT_S here, 120 s by default) and the task ends api_unavailable."""
    import socket

    from tests.contract.harness import drive, profile_env
    from tests.fakes.model_api import FakeModelApi

    with socket.socket() as closed:  # a port that refuses: nothing listens on it
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    codex_env(f"http://127.0.0.1:{port}")
    api = FakeModelApi([])  # never started: it only stands in the run record
    run = await drive(make_conductor, git_repo, agent=AGENT, api=api, timeout_s=90,
                      profile_changes={"env": profile_env(AGENT, {"FLEET_NETWORK_WAIT_S": "3"})})
    assert run.task.failure_reason == "api_unavailable", run.task.failure_context
    shown = "\n".join(await run.conductor.logs(_system(), run.task.id, 400))
    assert "could not connect to the model API" in shown and "stopping the agent" in shown
