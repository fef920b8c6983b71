"""The conductor's overhead per agent run, for each real agent CLI against the loopback fake
of its model API (tests/fakes), against running the same CLI raw on the same prompt and fake.

For each CLI (the pinned set scripts/agent-clis installs):
  (a) spawn request -> the agent's first model request (raw: process start -> first request);
  (b) the agent's exit (its launcher's exit file) -> pr_created, and -> ready;
  the whole run, spawn -> ready, against the raw run, start -> exit (ratio).

    .venv/bin/python bench/agent_overhead.py [--agents claude,codex,...] [--interval 3.0]

The monitor's interval (settings.monitor.interval_s, default 3 s) bounds (b): it finds the
exit on its next cycle. Needs PostgreSQL (FLEET_TEST_DATABASE_URL or the local server), tmux
and the CLIs (bash scripts/agent-clis).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from collections.abc import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fleet_tui.domain.models import Operator, SpawnRequest, Tier  # noqa: E402
from fleet_tui.domain.status import TaskStatus  # noqa: E402
from fleet_tui.domain.models import SYSTEM  # noqa: E402
from fleet_tui.engine.conductor import Conductor  # noqa: E402
from fleet_tui.engine.session import build_conductor  # noqa: E402
from fleet_tui.engine.session import close_conductor  # noqa: E402
from fleet_tui.infra.agents import build_argv, builtin_profiles  # noqa: E402
from fleet_tui.store.db import Database  # noqa: E402
from tests.contract.harness import TEST_COMMAND, agent_home, profile_env  # noqa: E402
from tests.contract.test_codex import codex_config  # noqa: E402
from tests.contract.test_gemini import gemini_settings  # noqa: E402
from tests.contract.test_opencode import opencode_config  # noqa: E402
from tests.fakes.model_api import FakeModelApi, agent_script  # noqa: E402
from tests.fixtures.agent_clis import cli_bin_dir  # noqa: E402
from tests.fixtures.db import create_database, drop_database, settings_for  # noqa: E402
from tests.fixtures.engine import PASSING_CI, kill_tmux_server  # noqa: E402
from tests.fixtures.gitrepo import make_repo  # noqa: E402

OWNER = os.environ.get("FLEET_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
S = TaskStatus
OPERATOR = Operator(id="bench", tier=Tier.SOVEREIGN)
AGENTS = ("claude", "codex", "gemini", "opencode", "aider")
MODELS = {"aider": "openai/test-model"}


def agent_env(agent: str, home: Path, url: str) -> dict[str, str]:
    """What a user's machine holds for this CLI to reach the fake (as the contract tests set)."""
    if agent == "claude":
        return {"ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": "sk-ant-bench"}
    if agent == "codex":
        codex_config(home, url)
        return {"OPENAI_API_KEY": "sk-bench"}
    if agent == "gemini":
        gemini_settings(home)
        return {"GEMINI_API_KEY": "gm-bench", "GOOGLE_GEMINI_BASE_URL": url}
    if agent == "opencode":
        opencode_config(home, url)
        return {"OPENAI_API_KEY": "sk-bench"}
    return {"OPENAI_API_KEY": "sk-bench", "OPENAI_API_BASE": f"{url}/v1"}


def first_request(api: FakeModelApi) -> float:
    return min(r["at"] for r in api.requests)


async def until(conductor: Conductor, task_id: str, done: Callable[[Any], bool], timeout_s: float = 300) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        task = await conductor.registry.get(task_id, operator=SYSTEM)
        if done(task):
            return task
        if time.monotonic() > deadline:
            raise TimeoutError(f"task {task_id} stuck in {task.status}")
        await asyncio.sleep(0.05)


async def conducted(agent: str, root: Path, url: str, interval: float, env: dict[str, str]) -> dict[str, Any]:
    """One task through a real conductor: the figures, and the prompt it gave the agent."""
    api = FakeModelApi(agent_script(test_command=TEST_COMMAND, commit=True)).start()
    os.environ.update(env)
    os.environ.update(agent_env(agent, Path(env["HOME"]), api.url))
    settings = settings_for(url, root / "data")
    settings.runtime.tmux_socket = f"fleet-bench-{uuid.uuid4().hex[:6]}"
    settings.worktree.base_dir = root / "worktrees"
    settings.forge.ci_command = PASSING_CI
    settings.monitor.interval_s = interval
    settings.agents.profiles = {agent: {"env": profile_env(agent)}}
    db = await Database.open(settings)
    conductor = build_conductor(settings, db)
    try:
        await conductor.start()
        started = time.time()
        spawned = await conductor.spawn(OPERATOR, SpawnRequest(
            description="Add hello.txt saying hello", repo=str(root / "repo"), agent=agent,
            model=MODELS.get(agent), max_retries=0))
        assert spawned.task is not None
        task = await until(conductor, spawned.task.id, lambda t: t.status in (S.READY, S.FAILED, S.ABANDONED))
        if task.status != S.READY:
            raise RuntimeError(f"{agent}: {task.status} {task.failure_reason}: {task.failure_context}")
        detail = await conductor.detail(SYSTEM, task.id)
        reached = {row["to_status"]: row["created_at"].timestamp() for row in detail.audit if row["to_status"]}
        exited = (conductor.runtime_for(task.runtime)._task_run_dir(task.id) / "exit").stat().st_mtime
        return {"spawn_to_request": first_request(api) - started, "exit_to_pr": reached["pr_created"] - exited,
                "exit_to_ready": reached["ready"] - exited, "whole": reached["ready"] - started,
                "prompt": detail.executions[-1]["prompt"]}
    finally:
        api.stop()
        await close_conductor(conductor)
        kill_tmux_server(settings.runtime.tmux_socket)


def raw(agent: str, root: Path, prompt: str, env: dict[str, str]) -> dict[str, float]:
    """The same CLI, argv and prompt, started by hand in a clone of the repository."""
    api = FakeModelApi(agent_script(test_command=TEST_COMMAND, commit=True)).start()
    workdir = root / f"raw-{uuid.uuid4().hex[:6]}"
    subprocess.run(["git", "clone", "-q", str(root / "repo"), str(workdir)], check=True)
    profile = builtin_profiles()[agent]
    prompt_file = root / "raw-prompt.txt"
    prompt_file.write_text(prompt)
    argv = build_argv(profile, model=MODELS.get(agent), workdir=workdir, test_command=TEST_COMMAND,
                      prompt_file=prompt_file if profile.prompt_via == "file" else None)
    full_env = {**os.environ, **env, **profile_env(agent), **agent_env(agent, Path(env["HOME"]), api.url),
                "PWD": str(workdir)}  # opencode takes its project from PWD, not the working directory
    try:
        started = time.time()
        with open(prompt_file, "rb") as stdin:
            subprocess.run(argv, cwd=workdir, env=full_env, stdin=stdin if profile.prompt_via == "stdin" else
                           subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
        ended = time.time()
        return {"start_to_request": first_request(api) - started, "whole": ended - started}
    finally:
        api.stop()


async def bench(agent: str, url: str, interval: float, runs: int) -> None:
    ours: list[dict[str, Any]] = []
    theirs: list[dict[str, float]] = []
    for _ in range(runs):
        root = Path(tempfile.mkdtemp(prefix=f"fleet-bench-{agent}-"))
        make_repo(root / "repo")
        env = {"PATH": f"{cli_bin_dir(False)}{os.pathsep}{os.environ['PATH']}", "HOME": str(agent_home(root))}
        saved = dict(os.environ)
        try:
            ours.append(await conducted(agent, root, url, interval, env))
            theirs.append(raw(agent, root, ours[-1]["prompt"], env))
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def med(rows: list[dict[str, Any]], key: str) -> float:
        return statistics.median(row[key] for row in rows)

    a, a_raw = med(ours, "spawn_to_request"), med(theirs, "start_to_request")
    whole, whole_raw = med(ours, "whole"), med(theirs, "whole")
    print(f"{agent:<9} spawn->first model request {a:5.2f} s (raw start->first request {a_raw:5.2f} s, "
          f"ratio {a / a_raw:4.2f}); agent exit->pr_created {med(ours, 'exit_to_pr'):5.2f} s, "
          f"->ready {med(ours, 'exit_to_ready'):5.2f} s; spawn->ready {whole:5.1f} s vs raw run "
          f"{whole_raw:5.1f} s (ratio {whole / whole_raw:4.2f})", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", default=",".join(AGENTS))
    parser.add_argument("--interval", type=float, default=3.0, help="the monitor's interval (settings default 3 s)")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    if not (cli_bin_dir(False).parent / ".installed").exists():
        sys.exit("agent CLIs not installed: run bash scripts/agent-clis")
    print(f"load average {os.getloadavg()[0]:.1f}; monitor interval {args.interval:g} s; "
          f"median of {args.runs} run(s)", flush=True)
    url = await create_database(OWNER)
    try:
        for agent in args.agents.split(","):
            try:
                await bench(agent, url, args.interval, args.runs)
            except Exception as exc:  # one CLI that fails here leaves the others measured
                print(f"{agent:<9} not measured: {type(exc).__name__}: {str(exc)[:300]}", flush=True)
    finally:
        await drop_database(OWNER, url)


if __name__ == "__main__":
    asyncio.run(main())
