"""Gemini CLI (the pinned @google/gemini-cli) through the shipped profile, against a loopback
Gemini generateContent API with SSE (GOOGLE_GEMINI_BASE_URL), its API-key login chosen in
its settings as a user would."""

from __future__ import annotations

import json
from datetime import datetime, UTC
from pathlib import Path
from typing import Any

import pytest

from fleet_tui.domain.status import TaskStatus
from tests.contract.harness import TEST_COMMAND, agent_home, prepare_env, run_agent
from tests.fakes.model_api import BAD_KEY, OUTAGE, USAGE, USAGE_LIMIT, agent_script

S = TaskStatus
AGENT = "gemini"


def gemini_settings(home: Path) -> None:
    """What a user of an API key writes: that login chosen, no usage statistics."""
    (home / ".gemini").mkdir(exist_ok=True)
    (home / ".gemini" / "settings.json").write_text(json.dumps({
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "privacy": {"usageStatisticsEnabled": False},
        # no retries against the fake (a user's own choice too): 10 attempts with backoff
        # made an outage take 4 minutes
        "general": {"enableAutoUpdate": False, "maxAttempts": 1}}))


@pytest.fixture
def gemini_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, agent_bin: Path):
    def setup(api_url: str) -> None:
        home = agent_home(tmp_path)
        gemini_settings(home)
        prepare_env(monkeypatch, agent_bin, home, {"GEMINI_API_KEY": "gm-test-0000",
                                                   "GOOGLE_GEMINI_BASE_URL": api_url})
    return setup


@pytest.mark.parametrize("commit", [True, False], ids=["commits", "leaves-edits"])
async def test_gemini_change_reaches_ready_with_usage(
        make_conductor: Any, git_repo: Path, gemini_env: Any, commit: bool) -> None:
    run = await run_agent(make_conductor, git_repo, gemini_env,
                          agent_script(test_command=TEST_COMMAND, commit=commit), agent=AGENT)
    assert run.task.status == S.READY, run.task.failure_context
    if not commit:
        assert "conductor_committed" in await run.audit_actions()
    (execution,) = await run.executions()
    assert execution["exit_code"] == 0 and execution["session_id"]
    assert execution["input_tokens"] >= USAGE["input_tokens"] and execution["total_tokens"]
    shown = "\n".join(await run.conductor.logs(_system(), run.task.id, 400))
    assert "tool run_shell_command:" in shown and "tool write_file:" in shown


@pytest.mark.parametrize(("scenario", "reason"), [(OUTAGE, "api_unavailable"), (BAD_KEY, "auth")])
async def test_gemini_failures_end_with_their_own_reason(
        make_conductor: Any, git_repo: Path, gemini_env: Any, scenario: str, reason: str) -> None:
    run = await run_agent(make_conductor, git_repo, gemini_env,
                          agent_script(test_command=TEST_COMMAND, commit=True), scenario=scenario,
                          agent=AGENT, timeout_s=120)
    assert run.task.failure_reason == reason, run.task.failure_context


async def test_gemini_usage_limit_waits_for_the_reset_without_spending_a_retry(
        make_conductor: Any, git_repo: Path, gemini_env: Any) -> None:
    run = await run_agent(make_conductor, git_repo, gemini_env,
                          agent_script(test_command=TEST_COMMAND, commit=True), scenario=USAGE_LIMIT,
                          agent=AGENT, max_retries=1, until=(S.RETRYING, S.ABANDONED), timeout_s=120)
    assert run.task.status == S.RETRYING and run.task.failure_reason == "usage_limited", run.task.failure_context
    assert run.task.retry_count == 0
    assert datetime.fromisoformat(run.task.metadata["retry_at"]) > datetime.now(UTC)


async def test_gemini_without_skip_trust_is_cli_changed_and_not_retried(
        make_conductor: Any, git_repo: Path, gemini_env: Any) -> None:
    """The profile as it was (no --skip-trust): a fresh worktree is untrusted, exit 55."""
    run = await run_agent(make_conductor, git_repo, gemini_env,
                          agent_script(test_command=TEST_COMMAND, commit=True), agent=AGENT, max_retries=2,
                          profile_changes={"command": ["gemini", "--yolo", "{model_args}"]},
                          until=(S.ABANDONED,))
    assert run.task.failure_reason == "cli_changed" and run.task.retry_count == 0, run.task.failure_context


def _system():
    from fleet_tui.domain.models import SYSTEM

    return SYSTEM
