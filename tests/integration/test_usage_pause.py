"""A usage limit with a reset time: the task waits for the reset without spending a retry,
and routing sends no new work to that agent until then, fleet-wide; an operator may opt out
(retry.usage_limit_opt_out): their task is retried like any failure, their routing ignores it."""

from __future__ import annotations

from datetime import datetime, timedelta, UTC
from pathlib import Path
from typing import Any

from fleet_tui.domain.models import Operator, SpawnRequest, TaskPatch, TaskType
from fleet_tui.domain.status import TaskStatus
from fleet_tui.engine.choice.agent_choice import paused_reason
from fleet_tui.engine.events.transitions import retry_or_abandon as retry_step
from fleet_tui.engine.session import step_services
from fleet_tui.store import reputation as history
from tests.fixtures.engine import operator
from tests.integration.test_routing_db import INSTALLED

S = TaskStatus


async def retry_or_abandon(conductor: Any, task: Any, *, actor: str) -> dict[str, Any]:
    """The retry step as a route runs it: over the conductor's step services."""
    return await retry_step(step_services(conductor), task, actor=actor)
RESET = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)


async def usage_limited(conductor: Any, op: Operator, repo: Path, *, resets: datetime = RESET) -> Any:
    """A claude task whose run hit the account's usage limit (as the monitor records it)."""
    task, _ = await conductor.governor.admit(
        op, description="hit the limit", repo=str(repo), base_branch="main", task_type="feature", agent="claude",
        model="opus", runtime="tmux", priority=50, max_retries=2, idempotency_key=None, branch=None, trace_id=None)
    task = await conductor.move(task, S.SPAWNING, actor="test")
    return await conductor.move(task, S.FAILED, TaskPatch(failure_reason="usage_limited", failure_context={
        "reason": "usage_limited", "retry_at": resets.isoformat()}), actor="test")


def feature(repo: Path) -> SpawnRequest:
    return SpawnRequest(description="another feature", repo=str(repo), task_type=TaskType.FEATURE)


async def test_a_usage_limit_holds_the_task_and_routing_until_the_reset(make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor(agents__profiles=INSTALLED)
    limited, other = operator(), operator()
    before = await conductor.parts.agents.route(other, feature(git_repo))
    assert before.agent == "claude"

    task = await usage_limited(conductor, limited, git_repo)
    decided = await retry_or_abandon(conductor, task, actor="test")
    assert decided["decision"] == "wait"
    waiting = await conductor.registry.get(task.id, operator=limited)
    assert waiting.status == S.RETRYING and waiting.retry_count == 0  # no retry spent
    assert datetime.fromisoformat(waiting.metadata["retry_at"]) == RESET

    assert await history.usage_pauses(conductor.parts.db) == {"claude": RESET}
    after = await conductor.parts.agents.route(other, feature(git_repo))  # another operator: the same account
    assert after.agent != "claude"
    assert f"claude/opus: usage limited until {RESET:%Y-%m-%d %H:%M} UTC" in after.skipped, after.skipped
    assert conductor.parts.agents.choose(feature(git_repo))[0] != "claude"  # the spawn path's preview too

    chosen = await conductor.parts.agents.route(other, SpawnRequest(**{**feature(git_repo).model_dump(), "agent": "claude"}))
    assert chosen.agent == "claude" and "usage limited" in chosen.reason  # an explicit choice is the operator's


async def test_an_operator_who_opted_out_is_retried_and_routed_as_usual(make_conductor: Any, git_repo: Path) -> None:
    bold = operator()
    conductor = await make_conductor(agents__profiles=INSTALLED, retry__usage_limit_opt_out=[bold.id])
    task = await usage_limited(conductor, bold, git_repo)
    decided = await retry_or_abandon(conductor, task, actor="test")
    assert decided["decision"] == "retry"
    retried = await conductor.registry.get(task.id, operator=bold)
    assert retried.retry_count == 1 and datetime.fromisoformat(retried.metadata["retry_at"]) < RESET

    await retry_or_abandon(conductor, await usage_limited(conductor, operator(), git_repo), actor="test")
    assert (await conductor.parts.agents.route(bold, feature(git_repo))).agent == "claude"  # pause ignored for them
    assert (await conductor.parts.agents.route(operator(), feature(git_repo))).agent != "claude"


async def test_a_past_reset_pauses_nothing(make_conductor: Any, git_repo: Path) -> None:
    conductor = await make_conductor(agents__profiles=INSTALLED)
    past = datetime.now(UTC) - timedelta(minutes=1)
    await retry_or_abandon(conductor, await usage_limited(conductor, operator(), git_repo, resets=past), actor="test")
    assert await history.usage_pauses(conductor.parts.db) == {}
    assert (await conductor.parts.agents.route(operator(), feature(git_repo))).agent == "claude"


def test_the_pause_reason_names_the_reset_and_ends_with_it() -> None:
    now = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
    paused = {"claude": now + timedelta(minutes=30)}
    assert paused_reason(paused, "claude", now) == "usage limited until 2026-12-07 01:30 UTC"
    assert paused_reason(paused, "claude", now + timedelta(minutes=31)) is None
    assert paused_reason(paused, "codex", now) is None


async def test_an_operator_opts_out_at_run_time_from_the_shell_and_every_conductor_follows(
        make_conductor: Any, git_repo: Path, tmp_path: Path) -> None:
    """`fleet-tui prefs set retry.usage_limit_opt_out true`, in its own process, is a
    fleet_config row: a running conductor (and any other on the fleet) honours it at the next
    decision, with no restart and no settings file; false wins over the settings file's list."""
    import json
    import os
    import subprocess
    import sys

    bold = operator()
    conductor = await make_conductor(agents__profiles=INSTALLED)
    other = await make_conductor(same_db=conductor, agents__profiles=INSTALLED,
                                 retry__usage_limit_opt_out=[bold.id])
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_") and k != "DATABASE_URL"}
    env.update({"FLEET_DATABASE__URL": conductor.settings.database_url or "", "FLEET_DATA_DIR": str(tmp_path / "cli"),
                "FLEET_OPERATOR__ID": bold.id, "FLEET_OPERATOR__IS_ADMIN": "false"})

    def prefs(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "fleet_tui", "prefs", *args], env=env, capture_output=True,
                              text=True, timeout=120)

    async def decision(c: Any) -> str:
        return (await retry_or_abandon(c, await usage_limited(c, bold, git_repo), actor="test"))["decision"]

    assert await decision(conductor) == "wait"
    done = prefs("set", "retry.usage_limit_opt_out", "true")
    assert done.returncode == 0 and "retry.usage_limit_opt_out true" in done.stdout, done.stderr
    assert json.loads(prefs("list", "--json").stdout) == {"retry.usage_limit_opt_out": True}
    assert await decision(conductor) == "retry"  # the running conductor, without a restart
    await retry_or_abandon(conductor, await usage_limited(conductor, operator(), git_repo), actor="test")
    assert (await conductor.parts.agents.route(bold, feature(git_repo))).agent == "claude"  # routing too

    assert prefs("set", "retry.usage_limit_opt_out", "false").returncode == 0
    assert await decision(other) == "wait"  # their own false beats the settings file's list
    assert prefs("unset", "retry.usage_limit_opt_out").returncode == 0
    assert await decision(other) == "retry"  # unset: the settings file decides again

    for args, field in ((("set", "retry.nope", "true"), "key"), (("set", "retry.usage_limit_opt_out", "maybe"), "value")):
        bad = prefs(*args)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and field in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr
    assert json.loads(prefs("list", "--json").stdout) == {"retry.usage_limit_opt_out": None}
