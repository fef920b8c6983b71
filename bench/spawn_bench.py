"""Spawn-to-running of the demo agent (WorktreeManager.create + TmuxRuntime.spawn) against
raw `git worktree add -b` + `tmux new-session -d` on the same repo in the same run, and the
CPU the runtime spends while 100 idle agents are streamed.

    .venv/bin/python bench/spawn_bench.py [--runs 20] [--agents 100] [--idle-seconds 10]

Targets: ratio <= 1.3; streaming 100 idle agents <= 2% of one core.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from fleet_tui.infra.agents import build_argv, builtin_profiles
from fleet_tui.infra.proc import run
from fleet_tui.infra.protocols import AgentLaunch
from fleet_tui.infra.tmux_runtime import TmuxRuntime, safe_env
from fleet_tui.infra.worktree import WorktreeManager

DEMO = builtin_profiles()["demo"]


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    for args in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "init"]):
        subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@b", *args], cwd=path, check=True)
    for i in range(200):  # a little content so checkout is not free
        (path / f"f{i}.txt").write_text("x\n" * 50)
    subprocess.run(["git", "add", "-A"], cwd=path, check=True)
    subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "-m", "files"],
                   cwd=path, check=True)
    return path


def launch(task_id: str, workdir: Path, prompt: str) -> AgentLaunch:
    argv = build_argv(DEMO, model=None, prompt_file=None, workdir=workdir)
    return AgentLaunch(task_id=task_id, workdir=workdir, argv=argv, prompt=prompt)


async def spawn_ratio(root: Path, runs: int) -> None:
    repo = make_repo(root / "repo")
    manager = WorktreeManager(root / "wt", root / "snap")
    runtime = TmuxRuntime(f"fleet-bench-{uuid.uuid4().hex[:8]}", root / "logs")
    raw_socket = f"fleet-bench-raw-{uuid.uuid4().hex[:8]}"
    demo_argv = build_argv(DEMO, model=None, prompt_file=None, workdir=root)
    ours: list[float] = []
    raw: list[float] = []
    try:
        for i in range(runs + 2):  # two warm-up rounds (server start, caches)
            for which in ((0, 1) if i % 2 else (1, 0)):  # alternate order against drift
                tid = f"b{i}x{which}"
                start = time.perf_counter()
                if which == 0:
                    path = await manager.create(repo, task_id=tid, branch=f"fleet/{tid}", base="main")
                    await runtime.spawn(launch(tid, path, "FLEET-DEMO: stall 30"))
                    (ours if i >= 2 else []).append(time.perf_counter() - start)
                else:
                    path = root / "raw" / tid
                    await run(["git", "worktree", "add", "-q", "-b", f"raw/{tid}", str(path), "main"], cwd=repo)
                    await run(["tmux", "-L", raw_socket, "new-session", "-d", "-s", f"raw-{tid}", "-c",
                               str(path), *demo_argv], env=safe_env())
                    (raw if i >= 2 else []).append(time.perf_counter() - start)
    finally:
        await runtime.kill_server()
        await run(["tmux", "-L", raw_socket, "kill-server"])
    o, r = statistics.median(ours), statistics.median(raw)
    print(f"spawn-to-running median over {runs}: fleet {o * 1000:.1f} ms, raw {r * 1000:.1f} ms, "
          f"ratio {o / r:.2f} (target <= 1.3)")


def cpu_seconds() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # the liveness poll's tmux calls
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


async def idle_streams(root: Path, agents: int, seconds: float) -> None:
    runtime = TmuxRuntime(f"fleet-bench-{uuid.uuid4().hex[:8]}", root / "logs2")
    workdir = root / "idle"
    workdir.mkdir()
    consumers: list[asyncio.Task[None]] = []
    received = 0

    async def consume(task_id: str) -> None:
        nonlocal received
        async for _line in runtime.stream(task_id):
            received += 1

    try:
        for i in range(agents):
            await runtime.spawn(launch(f"idle{i}", workdir, "FLEET-DEMO: stall 600"))
        consumers = [asyncio.create_task(consume(f"idle{i}")) for i in range(agents)]
        await asyncio.sleep(3)  # agents print their first line and go quiet
        before, wall = cpu_seconds(), time.perf_counter()
        await asyncio.sleep(seconds)
        used, elapsed = cpu_seconds() - before, time.perf_counter() - wall
        alive = len(await runtime.list_active())
        print(f"streaming {agents} idle agents ({alive} alive, {received} lines seen): "
              f"{used * 1000:.0f} ms CPU in {elapsed:.1f} s = {100 * used / elapsed:.2f}% of one core "
              f"(target <= 2%)")
    finally:
        for task in consumers:
            task.cancel()
        await runtime.kill_server()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        await spawn_ratio(Path(tmp), args.runs)
        await idle_streams(Path(tmp), args.agents, args.idle_seconds)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
