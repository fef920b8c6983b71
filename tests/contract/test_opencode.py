"""opencode (the pinned opencode-ai) through the shipped profile, against a loopback OpenAI
Chat Completions API with SSE: a provider in the user's opencode.json, as a user routes it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fleet_tui.domain.status import TaskStatus
from tests.contract.harness import TEST_COMMAND, agent_home, prepare_env, run_agent
from tests.fakes.model_api import BAD_KEY, USAGE, agent_script

S = TaskStatus
AGENT = "opencode"


def opencode_config(home: Path, api_url: str, models: tuple[str, ...] = ()) -> None:
    directory = home / ".config" / "opencode"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "opencode.json").write_text(json.dumps({
        "provider": {"fleetfake": {"npm": "@ai-sdk/openai-compatible", "name": "loopback fake",
                                   "options": {"baseURL": f"{api_url}/v1", "apiKey": "{env:OPENAI_API_KEY}"},
                                   "models": {name: {"name": name} for name in ("test-model", *models)}}},
        "model": "fleetfake/test-model", "autoupdate": False, "share": "disabled"}))


@pytest.fixture
def opencode_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, agent_bin: Path):
    def setup(api_url: str) -> None:
        home = agent_home(tmp_path)
        opencode_config(home, api_url)
        prepare_env(monkeypatch, agent_bin, home, {"OPENAI_API_KEY": "sk-test-0000"})
    return setup


@pytest.mark.parametrize("commit", [True, False], ids=["commits", "leaves-edits"])
async def test_opencode_change_reaches_ready_with_usage(
        make_conductor: Any, git_repo: Path, opencode_env: Any, commit: bool) -> None:
    run = await run_agent(make_conductor, git_repo, opencode_env,
                          agent_script(test_command=TEST_COMMAND, commit=commit), agent=AGENT)
    assert run.task.status == S.READY, run.task.failure_context
    assert ("conductor_committed" in await run.audit_actions()) is not commit
    (execution,) = await run.executions()
    assert execution["exit_code"] == 0 and execution["session_id"]
    assert execution["input_tokens"] >= USAGE["input_tokens"] and execution["output_tokens"]
    shown = "\n".join(await run.conductor.logs(_system(), run.task.id, 400))
    assert "tool bash: git add hello.txt" in shown or not commit


async def test_opencode_bad_key_is_auth(make_conductor: Any, git_repo: Path, opencode_env: Any) -> None:
    """An outage and a usage limit: tests/contract/test_slow_failures.py (opencode retries
    them for about two minutes before it gives up)."""
    run = await run_agent(make_conductor, git_repo, opencode_env,
                          agent_script(test_command=TEST_COMMAND, commit=True), scenario=BAD_KEY, agent=AGENT)
    assert run.task.failure_reason == "auth", run.task.failure_context


async def test_opencode_removed_flag_is_cli_changed_and_not_retried(
        make_conductor: Any, git_repo: Path, opencode_env: Any) -> None:
    run = await run_agent(make_conductor, git_repo, opencode_env,
                          agent_script(test_command=TEST_COMMAND, commit=True), agent=AGENT, max_retries=2,
                          profile_changes={"command": ["opencode", "run", "--format", "json", "--removed-in-this-version", "{model_args}"]},
                          until=(S.ABANDONED,))
    assert run.task.failure_reason == "cli_changed" and run.task.retry_count == 0, run.task.failure_context


def _system():
    from fleet_tui.engine.conductor import SYSTEM

    return SYSTEM
