"""aider (the pinned aider-chat, in its own venv) through the shipped profile, against a
loopback OpenAI Chat Completions API: a provider-prefixed model (openai/...) and the base URL
variable passed by the profile; it edits through text and commits its own work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fleet_tui.domain.status import TaskStatus
from tests.contract.harness import TEST_COMMAND, agent_home, prepare_env, run_agent
from tests.fakes.model_api import BAD_KEY, agent_script

S = TaskStatus
AGENT = "aider"
MODEL = "openai/test-model"


@pytest.fixture
def aider_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, agent_bin: Path):
    def setup(api_url: str) -> None:
        prepare_env(monkeypatch, agent_bin, agent_home(tmp_path),
                    {"OPENAI_API_KEY": "sk-test-0000", "OPENAI_API_BASE": f"{api_url}/v1"})
    return setup


async def test_aider_commits_its_edit_and_the_task_is_ready_with_usage(
        make_conductor: Any, git_repo: Path, aider_env: Any) -> None:
    run = await run_agent(make_conductor, git_repo, aider_env,
                          agent_script(test_command=TEST_COMMAND, commit=False), agent=AGENT,
                          profile_changes={"default_model": MODEL})
    assert run.task.status == S.READY, run.task.failure_context
    assert "conductor_committed" not in await run.audit_actions()  # aider committed itself
    (execution,) = await run.executions()
    assert execution["exit_code"] == 0 and execution["input_tokens"] and execution["output_tokens"]
    worktree = Path(run.task.worktree_path or "")
    assert (worktree / "hello.txt").read_text() == "hello from the agent\n"
    assert not (worktree / ".gitignore").exists()  # --no-gitignore: no edit of the user's
    assert not (worktree / ".aider.chat.history.md").exists()
    # auto_commits: aider commits each edit, so its model is not asked to run git
    told = "\n".join(str(m.get("content")) for r in run.api.requests for m in r["body"].get("messages") or [])
    assert "committed for you" in told and "commit, then exit" not in told


async def test_aider_bad_key_is_auth(make_conductor: Any, git_repo: Path, aider_env: Any) -> None:
    run = await run_agent(make_conductor, git_repo, aider_env,
                          agent_script(test_command=TEST_COMMAND, commit=False), scenario=BAD_KEY,
                          agent=AGENT, profile_changes={"default_model": MODEL})
    assert run.task.failure_reason == "auth", run.task.failure_context


async def test_aider_removed_flag_is_cli_changed_and_not_retried(
        make_conductor: Any, git_repo: Path, aider_env: Any) -> None:
    from fleet_tui.infra.agents import builtin_profiles

    command = [*builtin_profiles()[AGENT].command[:-1], "--removed-in-this-version", "{model_args}"]
    run = await run_agent(make_conductor, git_repo, aider_env,
                          agent_script(test_command=TEST_COMMAND, commit=False), agent=AGENT, max_retries=2,
                          profile_changes={"default_model": MODEL, "command": command}, until=(S.ABANDONED,))
    assert run.task.failure_reason == "cli_changed" and run.task.retry_count == 0, run.task.failure_context
    assert not run.api.requests  # it never reached the model

