"""One real agent CLI driven by a real conductor against a loopback fake of its model API.

The agent runs in tmux like any task, with the shipped profile; the test adds only what a
user's machine would have: the CLI on PATH, a HOME with a git identity, the API's base URL
and a key. Proxies that refuse (127.0.0.1:9) leave the agent no route but loopback for any
client that honours them, and the profiles turn telemetry and update checks off."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fleet_tui.domain.models import SpawnRequest, TaskRecord
from fleet_tui.domain.status import TaskStatus
from fleet_tui.domain.models import SYSTEM
from fleet_tui.engine.conductor import Conductor
from fleet_tui.infra.agents import builtin_profiles
from fleet_tui.store import executions
from tests.e2e.test_conductor_flow import wait_for
from tests.fakes.model_api import FakeModelApi, Step
from tests.fixtures.engine import PASSING_CI, operator

S = TaskStatus
REFUSING_PROXY = "http://127.0.0.1:9"
FLEET_TUI = str(Path(sys.executable).with_name("fleet-tui"))
TEST_COMMAND = shlex.join(PASSING_CI)  # the repository's CI command, run by the agent too
SETTLED = (S.READY, S.FAILED, S.ABANDONED, S.RETRYING, S.REJECTED)


@dataclass
class Run:
    conductor: Conductor
    task: TaskRecord
    api: FakeModelApi

    async def executions(self) -> list[dict[str, Any]]:
        return await executions.list_for_task(self.conductor.parts.db, self.task.id, operator=None)

    async def audit_actions(self) -> list[str]:
        detail = await self.conductor.detail(SYSTEM, self.task.id)
        return [row["action"] for row in detail.audit]


def agent_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / ".gitconfig").write_text("[user]\n\tname = Agent Under Test\n\temail = agent@test.invalid\n")
    return home


def prepare_env(monkeypatch: pytest.MonkeyPatch, agent_bin: Path, home: Path, env: dict[str, str]) -> None:
    import os

    monkeypatch.setenv("PATH", f"{agent_bin}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("HOME", str(home))
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def profile_env(agent: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The shipped profile's fixed environment plus the refusing proxies."""
    return {**builtin_profiles()[agent].env, "HTTPS_PROXY": REFUSING_PROXY, "HTTP_PROXY": REFUSING_PROXY,
            "https_proxy": REFUSING_PROXY, "http_proxy": REFUSING_PROXY, "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost", **(extra or {})}


async def drive(make_conductor: Any, repo: Path, *, agent: str, api: FakeModelApi,
                profile_changes: dict[str, Any] | None = None, max_retries: int = 0,
                until: tuple[TaskStatus, ...] = SETTLED, timeout_s: float = 120,
                **settings: Any) -> Run:
    changes = {"env": profile_env(agent), **(profile_changes or {})}
    conductor = await make_conductor(review__enabled=True, agents__profiles={agent: changes}, **settings)
    await conductor.start()
    spawned = await conductor.spawn(operator(), SpawnRequest(
        description="Add hello.txt saying hello", repo=str(repo), agent=agent, max_retries=max_retries))
    task = await wait_for(conductor, spawned.task.id, lambda t: t.status in until, timeout_s)
    return Run(conductor, task, api)


def fake(script: list[Step], scenario: str = "work") -> FakeModelApi:
    return FakeModelApi(script, scenario=scenario).start()


async def run_agent(make_conductor: Any, repo: Path, set_env: Any, script: list[Step], *,
                    scenario: str = "work", agent: str, **drive_args: Any) -> Run:
    """One task of `agent` against a fake model API playing `script` in `scenario`: the
    agent's environment pointed at it by `set_env(url)`, the API stopped however it ends."""
    api = fake(script, scenario)
    set_env(api.url)
    try:
        return await drive(make_conductor, repo, agent=agent, api=api, **drive_args)
    finally:
        api.stop()


def fleet_cli(run: Run, *argv: str) -> subprocess.CompletedProcess[str]:
    """The installed console script, in its own process, on the run's fleet (its database,
    data directory, tmux server and profiles) as the task's operator."""
    settings = run.conductor.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_") and k != "DATABASE_URL"}
    env.update({
        "FLEET_DATABASE__URL": settings.database_url or "", "FLEET_DATA_DIR": str(settings.data_dir),
        "FLEET_RUNTIME__TMUX_SOCKET": settings.runtime.tmux_socket or "",
        "FLEET_WORKTREE__BASE_DIR": str(settings.worktree.base_dir),
        "FLEET_FORGE__CI_COMMAND": json.dumps(settings.forge.ci_command),
        "FLEET_AGENTS__PROFILES": json.dumps(settings.agents.profiles),
        "FLEET_RUNTIME__DOCKER_IMAGES": json.dumps(settings.runtime.docker_images),
        "FLEET_RUNTIME__DOCKER_USER": settings.runtime.docker_user,
        "FLEET_OPERATOR__ID": run.task.operator_id, "FLEET_OPERATOR__TIER": "sovereign",
        "FLEET_OPERATOR__IS_ADMIN": "false"})
    return subprocess.run([FLEET_TUI, *argv], env=env, capture_output=True, text=True, timeout=120)


ANSWER = "Skip the download; write hello.txt instead."


async def answer_and_finish(run: Run, denied: str) -> TaskRecord:
    """The person answers the waiting agent from the shell; its session goes on to ready,
    the model told the answer after the refused command."""
    from tests.e2e.test_conductor_flow import wait_for

    answered = fleet_cli(run, "answer", run.task.id, ANSWER)
    assert answered.returncode == 0, answered.stderr
    task = await wait_for(run.conductor, run.task.id, lambda t: t.status in (S.READY, S.FAILED, S.ABANDONED), 120)
    assert task.status == S.READY, task.failure_context
    bodies = [json.dumps(r["body"]) for r in run.api.requests]  # the same session, told the answer
    assert any(ANSWER in b and denied in b for b in bodies)
    return task
