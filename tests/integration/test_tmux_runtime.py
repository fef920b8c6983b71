"""TmuxRuntime with the real demo agent in real git worktrees on a private tmux socket."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
import uuid
from pathlib import Path

import pytest

from fleet_tui.domain.errors import SpawnError, SpawnErrorCode, ValidationFailed
from fleet_tui.infra.agents import build_argv, builtin_profiles, parse_usage, waits_for_input
from fleet_tui.infra.protocols import AgentLaunch, ProcessState, Runtime
from fleet_tui.infra.tmux_runtime import TmuxRuntime, _stop_group, group_runs
from fleet_tui.infra.worktree import WorktreeManager
from tests.fixtures.gitrepo import git

DEMO = builtin_profiles()["demo"]


def new_id() -> str:
    return uuid.uuid4().hex[:10]


def demo_launch(task_id: str, workdir: Path, prompt: str, env: dict[str, str] | None = None) -> AgentLaunch:
    argv = build_argv(DEMO, model=None, prompt_file=None, workdir=workdir)
    return AgentLaunch(task_id=task_id, workdir=workdir, argv=argv, prompt=prompt,
                       prompt_via=DEMO.prompt_via, env=env or {})


async def wait_exit(runtime: TmuxRuntime, task_id: str, timeout_s: float = 20.0) -> int | None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        state = await runtime.exit_status(task_id)
        if state is not None and not state.alive:
            return state.exit_code
        await asyncio.sleep(0.1)
    import subprocess
    out = (await runtime._tmux("list-panes", "-a", "-F", "#{pane_pid} #{pane_dead} #{pane_dead_status}"))[1]
    pid = out.split()[0]
    ps = subprocess.run(["ps", "-eo", "pid,ppid,stat,cmd"], capture_output=True, text=True).stdout
    srv = [line for line in ps.splitlines() if runtime.socket_name in line]
    mask = subprocess.run(["grep", "-E", "Sig", f"/proc/{srv[0].split()[0]}/status"], capture_output=True, text=True).stdout if srv else ""
    raise AssertionError(f"{task_id} did not exit: {out} {[line for line in ps.splitlines() if pid in line]} {srv} {mask}")


@pytest.fixture
async def worktree(git_repo: Path, tmp_path: Path) -> Path:
    manager = WorktreeManager(tmp_path / "wt", tmp_path / "snap")
    return await manager.create(git_repo, task_id="w1", branch="fleet/w1", base="main")


def test_runtime_satisfies_the_protocol(tmux_runtime: TmuxRuntime) -> None:
    assert isinstance(tmux_runtime, Runtime)


async def test_demo_agent_runs_streams_commits_and_exits_0(tmux_runtime: TmuxRuntime, worktree: Path) -> None:
    tid = new_id()
    prompt = "Add a greeting file\nFLEET-DEMO: write docs/hello.txt hello world\nFLEET-DEMO: commit add greeting"
    state = await tmux_runtime.spawn(demo_launch(tid, worktree, prompt))
    assert state.alive and state.ref == f"fleet-{tid}"
    lines = [line async for line in tmux_runtime.stream(tid)]
    text = "\n".join(lines)
    assert "[demo] committed: add greeting" in text
    assert parse_usage(DEMO, text) is not None
    assert await wait_exit(tmux_runtime, tid) == 0
    assert (worktree / "docs" / "hello.txt").read_text() == "hello world\n"
    assert git(worktree, "log", "-1", "--format=%s|%an") == "add greeting|Fleet Demo Agent"
    assert "[demo] done" in await tmux_runtime.tail(tid, 3)
    assert tid not in {s.task_id for s in await tmux_runtime.list_active()}
    assert tid in await tmux_runtime.states()


async def test_exit_137_is_read_from_the_dead_pane(tmux_runtime: TmuxRuntime, worktree: Path) -> None:
    tid = new_id()
    await tmux_runtime.spawn(demo_launch(tid, worktree, "crash\nFLEET-DEMO: exit 137"))
    assert await wait_exit(tmux_runtime, tid) == 137
    assert any("Out of memory" in line for line in await tmux_runtime.tail(tid))
    assert git(worktree, "status", "--porcelain") == ""


async def test_env_switch_fails_and_fail_until_attempt(tmux_runtime: TmuxRuntime, worktree: Path) -> None:
    tid = new_id()
    await tmux_runtime.spawn(demo_launch(tid, worktree, "x", env={"FLEET_DEMO_MODE": "fail-until-attempt 2",
                                                                 "FLEET_ATTEMPT": "1"}))
    assert await wait_exit(tmux_runtime, tid) == 1
    await tmux_runtime.spawn(demo_launch(tid, worktree, "x", env={"FLEET_DEMO_MODE": "fail-until-attempt 2",
                                                                 "FLEET_ATTEMPT": "2"}))
    assert await wait_exit(tmux_runtime, tid) == 0


async def test_list_active_and_kill(tmux_runtime: TmuxRuntime, worktree: Path) -> None:
    a, b = new_id(), new_id()
    await tmux_runtime.spawn(demo_launch(a, worktree, "FLEET-DEMO: stall 60"))
    await tmux_runtime.spawn(demo_launch(b, worktree, "FLEET-DEMO: stall 60"))
    active = {s.task_id for s in await tmux_runtime.list_active()}
    assert {a, b} <= active
    assert await tmux_runtime.is_alive(a)
    await tmux_runtime.kill(a)
    assert not await tmux_runtime.is_alive(a)
    assert await tmux_runtime.exit_status(a) is None
    assert {s.task_id for s in await tmux_runtime.list_active()} == {b}
    await tmux_runtime.kill(b)
    await tmux_runtime.kill(b)  # idempotent
    assert await tmux_runtime.list_active() == []


async def test_stream_ends_when_killed(tmux_runtime: TmuxRuntime, worktree: Path) -> None:
    tid = new_id()
    await tmux_runtime.spawn(demo_launch(tid, worktree, "FLEET-DEMO: wait-input"))
    seen: list[str] = []

    async def consume() -> None:
        async for line in tmux_runtime.stream(tid):
            seen.append(line)

    consumer = asyncio.create_task(consume())
    for _ in range(100):
        if waits_for_input(DEMO, "\n".join(seen)):
            break
        await asyncio.sleep(0.05)
    assert waits_for_input(DEMO, "\n".join(seen))
    await tmux_runtime.kill(tid)
    await asyncio.wait_for(consumer, 10)


async def test_wait_input_is_answered_with_send_keys(tmux_runtime: TmuxRuntime, worktree: Path) -> None:
    tid = new_id()
    await tmux_runtime.spawn(demo_launch(tid, worktree, "FLEET-DEMO: wait-input"))
    for _ in range(100):
        if waits_for_input(DEMO, "\n".join(await tmux_runtime.tail(tid, 5))):
            break
        await asyncio.sleep(0.05)
    assert DEMO.auto_answer is not None
    await tmux_runtime.send_input(tid, DEMO.auto_answer)
    assert await wait_exit(tmux_runtime, tid) == 0
    assert "[demo] continuing" in await tmux_runtime.tail(tid, 20)
    with pytest.raises(ValidationFailed) as info:
        await tmux_runtime.send_input(tid, "y\n rm -rf /")
    assert info.value.field == "input"


async def test_prompt_with_shell_syntax_creates_nothing(tmux_runtime: TmuxRuntime, worktree: Path,
                                                         tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    tid = new_id()
    hostile = f"$(touch {marker}) `touch {marker}` ; touch {marker} && touch {marker} | x '\" \\"
    await tmux_runtime.spawn(demo_launch(tid, worktree, hostile, env={"EVIL": f"$(touch {marker})"}))
    assert await wait_exit(tmux_runtime, tid) == 0
    assert not marker.exists()
    assert not Path("/tmp/pwned").exists()
    assert git(worktree, "log", "-1", "--format=%s").startswith("demo: $(touch ")


async def test_secrets_reach_the_agent_but_not_disk(tmux_runtime: TmuxRuntime, worktree: Path) -> None:
    tid = new_id()
    secret = "s3cr3t-" + uuid.uuid4().hex
    argv = [sys.executable, "-c", "import os; print('SECRET-LEN', len(os.environ['API_TOKEN']))"]
    launch = AgentLaunch(task_id=tid, workdir=worktree, argv=argv, prompt="p", env={"API_TOKEN": secret})
    await tmux_runtime.spawn(launch)
    assert await wait_exit(tmux_runtime, tid) == 0
    assert f"SECRET-LEN {len(secret)}" in await tmux_runtime.tail(tid, 5)
    for path in tmux_runtime.log_dir.rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path
    prompt = tmux_runtime.run_dir / tid / "prompt.txt"
    assert stat.S_IMODE(prompt.stat().st_mode) == 0o600


async def test_conductor_secrets_do_not_leak_into_panes(tmux_runtime: TmuxRuntime, worktree: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "conductor-only")
    tid = new_id()
    argv = [sys.executable, "-c", "import os; print('KEY', os.environ.get('ANTHROPIC_API_KEY'))"]
    await tmux_runtime.spawn(AgentLaunch(task_id=tid, workdir=worktree, argv=argv, prompt=""))
    assert await wait_exit(tmux_runtime, tid) == 0
    assert "KEY None" in await tmux_runtime.tail(tid, 5)


async def test_prompt_via_file(tmux_runtime: TmuxRuntime, worktree: Path) -> None:
    tid = new_id()
    argv = [sys.executable, "-m", "fleet_tui.infra.demo_agent", "{prompt_file}"]
    launch = AgentLaunch(task_id=tid, workdir=worktree, argv=argv, prompt_via="file",
                         prompt="via file\nFLEET-DEMO: write f.txt from-file")
    await tmux_runtime.spawn(launch)
    assert await wait_exit(tmux_runtime, tid) == 0
    assert (worktree / "f.txt").read_text() == "from-file\n"


async def test_flood_is_streamed_completely(tmux_runtime: TmuxRuntime, worktree: Path) -> None:
    tid = new_id()
    await tmux_runtime.spawn(demo_launch(tid, worktree, "FLEET-DEMO: flood 5000"))
    lines = [line async for line in tmux_runtime.stream(tid)]
    flood = [line for line in lines if "flood line" in line]
    assert len(flood) == 5000
    assert flood[-1].startswith("[demo] flood line 4999")
    assert len(await tmux_runtime.tail(tid, 10)) == 10


def log_lines(path: Path) -> list[str]:
    """The file's lines as the runtime decodes them (a last line may lack its newline)."""
    return [line.rstrip("\r") for line in path.read_bytes().decode("utf-8", errors="replace").split("\n")]


async def test_read_from_gives_complete_lines_and_reads_on_from_its_cursor(
        tmux_runtime: TmuxRuntime, worktree: Path) -> None:
    tid = new_id()
    await tmux_runtime.spawn(demo_launch(tid, worktree, "quiet after its usage line\nFLEET-DEMO: sleep 60"))
    log = tmux_runtime.log_path(tid)
    read: list[str] = []
    cursor = 0

    async def read_on(max_lines: int = 1000) -> list[str]:
        nonlocal cursor
        lines, cursor = await tmux_runtime.read_from(tid, cursor, max_lines)
        read.extend(lines)
        return lines

    for _ in range(200):  # the agent's own lines, up to its usage line; then it sleeps
        await read_on()
        if any(line.startswith("usage:") for line in read):
            break
        await asyncio.sleep(0.05)
    assert read == log_lines(log)[:-1] and cursor == log.stat().st_size  # all of it, all complete

    with log.open("ab") as out:
        out.write(b"alpha\nbeta\ngam")
    assert await read_on() == ["alpha", "beta"]
    assert await read_on() == [] and cursor == log.stat().st_size - 3  # "gam" waits for its newline
    with log.open("ab") as out:
        out.write(b"ma\r\ndelta\n\xff\xfe broken utf-8\n" + b"".join(b"bulk %d\n" % i for i in range(2500)))
    assert await read_on(2) == ["gamma", "delta"]
    assert [len(await read_on()) for _ in range(4)] == [1000, 1000, 501, 0]  # full reads, then the rest
    assert read[-2501] == "\ufffd\ufffd broken utf-8" and read[-1] == "bulk 2499"

    tail, end = await tmux_runtime.read_from(tid, None, 3)
    assert (tail, end) == (["bulk 2497", "bulk 2498", "bulk 2499"], cursor)
    with log.open("ab") as out:
        out.write(b"last words")
    assert await read_on() == []
    await tmux_runtime.kill(tid)  # no newline can come now: the unterminated line counts
    assert await read_on() == ["last words"] and await read_on() == []
    assert read == log_lines(log)  # every line exactly once, in order


async def test_spawn_failures_leave_no_session_or_files(tmux_runtime: TmuxRuntime, worktree: Path,
                                                        tmp_path: Path) -> None:
    tid = new_id()
    with pytest.raises(SpawnError) as info:
        await tmux_runtime.spawn(demo_launch(tid, tmp_path / "missing", "x"))
    assert info.value.code is SpawnErrorCode.PROCESS_FAILED
    broken = TmuxRuntime(tmux_runtime.socket_name, tmux_runtime.log_dir, tmux_bin=str(tmp_path / "no-tmux"))
    with pytest.raises(SpawnError) as info:
        await broken.spawn(demo_launch(tid, worktree, "x"))
    assert info.value.code is SpawnErrorCode.PROCESS_FAILED
    assert await tmux_runtime.exit_status(tid) is None
    assert not (tmux_runtime.run_dir / tid).exists()
    # a live session of the same task refuses a second spawn and keeps the first
    await tmux_runtime.spawn(demo_launch(tid, worktree, "FLEET-DEMO: stall 30"))
    with pytest.raises(SpawnError, match="already running"):
        await tmux_runtime.spawn(demo_launch(tid, worktree, "x"))
    assert await tmux_runtime.is_alive(tid)
    await tmux_runtime.kill(tid)


async def test_states_reads_every_session_in_one_call(tmux_runtime: TmuxRuntime, worktree: Path) -> None:
    ids = [new_id() for _ in range(5)]
    for tid in ids:
        await tmux_runtime.spawn(demo_launch(tid, worktree, "FLEET-DEMO: exit 3"))
    for tid in ids:
        await wait_exit(tmux_runtime, tid)
    states = await tmux_runtime.states()
    assert {tid: states[tid].exit_code for tid in ids} == {tid: 3 for tid in ids}


async def test_session_names_are_matched_exactly(tmux_runtime: TmuxRuntime, worktree: Path) -> None:
    long_id = new_id()
    await tmux_runtime.spawn(demo_launch(long_id, worktree, "FLEET-DEMO: stall 30"))
    prefix = long_id[:4]
    assert await tmux_runtime.exit_status(prefix) is None
    await tmux_runtime.kill(prefix)
    assert await tmux_runtime.is_alive(long_id)
    await tmux_runtime.kill(long_id)


async def test_user_tmux_default_server_untouched(tmux_runtime: TmuxRuntime) -> None:
    assert tmux_runtime.socket_name.startswith("fleet-test-")
    assert await tmux_runtime.states() == {}
    assert os.environ.get("TMUX") is None or True  # the runtime never reads $TMUX


async def test_last_output_at_follows_the_log(tmux_runtime: TmuxRuntime, worktree: Path) -> None:
    tid = new_id()
    assert await tmux_runtime.last_output_at(tid) is None
    await tmux_runtime.spawn(demo_launch(tid, worktree, "x"))
    assert await wait_exit(tmux_runtime, tid) == 0
    stamp = await tmux_runtime.last_output_at(tid)
    assert stamp is not None and abs(stamp - tmux_runtime.log_path(tid).stat().st_mtime) < 1e-6


# A parent that does not reap: the group's leader (its child, in a session of its own) exits
# on SIGTERM and stays a zombie, as a launcher does until tmux reaps it.
NEGLECTFUL_PARENT = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], start_new_session=True)\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(60)\n"
)


async def test_stopping_a_group_whose_leader_exited_does_not_wait_for_its_reaping() -> None:
    """kill(0) finds a zombie: every stop whose launcher tmux had not reaped waited its whole
    grace (and tmux 3.3a sometimes never reaps it), then SIGKILL's second more."""
    parent = await asyncio.create_subprocess_exec(sys.executable, "-c", NEGLECTFUL_PARENT,
                                                  stdout=asyncio.subprocess.PIPE)
    try:
        leader = int((await parent.stdout.readline()).decode())
        assert group_runs(leader)
        started = asyncio.get_running_loop().time()
        await _stop_group(leader, grace_s=30)
        assert asyncio.get_running_loop().time() - started < 10  # not the 30 s grace
        assert open(f"/proc/{leader}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"  # not reaped yet
        assert not group_runs(leader)
    finally:
        parent.kill()
        await parent.wait()


async def test_a_prestarted_session_waits_unseen_then_runs_its_launch(tmux_runtime: TmuxRuntime,
                                                                     worktree: Path, tmp_path: Path) -> None:
    """The session opens before its worktree exists (tmux and the launcher's start overlap
    the worktree's making); until its launch is given, no agent runs there and states() says
    so, so that no monitor adopts it as an agent."""
    tid = new_id()
    later = tmp_path / "not-yet"
    early = tmux_runtime.prestart(tid, later, first_start=True)
    await early.opened
    await asyncio.sleep(0.3)  # the launcher has started and waits
    state = (await tmux_runtime.states())[tid]
    assert not state.alive and state.exit_code is None
    assert not (await tmux_runtime.exit_status(tid)).alive
    assert tid not in {s.task_id for s in await tmux_runtime.list_active()}
    assert (await tmux_runtime.tail(tid)) == []
    os.rename(worktree, later)  # the worktree is there now
    launch = demo_launch(tid, later, "hi\nFLEET-DEMO: stall 30")
    state = await tmux_runtime.spawn(AgentLaunch(**{**launch.__dict__, "early": early}))
    assert state.alive and state.ref == f"fleet-{tid}"
    for _ in range(100):
        if "demo" in " ".join(await tmux_runtime.tail(tid)):
            break
        await asyncio.sleep(0.1)
    assert "demo" in " ".join(await tmux_runtime.tail(tid))
    assert (await tmux_runtime.states())[tid].alive
    assert list((tmux_runtime.run_dir / tid).glob("launch-*")) == []  # the spec, read, is gone
    await tmux_runtime.kill(tid)


async def test_a_prestarted_session_left_by_its_conductor_starts_nothing(tmux_runtime: TmuxRuntime,
                                                                         worktree: Path) -> None:
    """A spawn that stops (or a conductor that dies: its end of the FIFO closes the same way)
    before the launch: the waiting launcher exits without starting anything; abandon()
    removes the session and its files."""
    tid = new_id()
    early = tmux_runtime.prestart(tid, worktree, first_start=True)
    await early.opened
    early.let_go()
    for _ in range(100):  # (wait_exit would not wait: a waiting launcher is not alive either)
        if (await tmux_runtime._tmux("list-panes", "-t", f"=fleet-{tid}:", "-F", "#{pane_dead}"))[1].strip() == "1":
            break
        await asyncio.sleep(0.1)
    assert (await tmux_runtime._tmux("list-panes", "-t", f"=fleet-{tid}:", "-F", "#{pane_dead}"))[1].strip() == "1"
    assert await tmux_runtime.exit_status(tid) == ProcessState(tid, f"fleet-{tid}", alive=False, exit_code=127)
    assert "no launch came" in " ".join(await tmux_runtime.tail(tid))
    assert not (worktree / "FLEET_DEMO.md").exists()
    await tmux_runtime.abandon(early)
    assert await tmux_runtime.exit_status(tid) is None
    assert not (tmux_runtime.run_dir / tid).exists()
    assert list((tmux_runtime.run_dir / ".starting").iterdir()) == []
    # abandoned while still waiting: the same, and at once
    other = new_id()
    early = tmux_runtime.prestart(other, worktree, first_start=True)
    await tmux_runtime.abandon(early)
    assert await tmux_runtime.exit_status(other) is None
    assert list((tmux_runtime.run_dir / ".starting").iterdir()) == []


async def test_a_launch_given_before_the_launcher_looks_still_starts(tmux_runtime: TmuxRuntime,
                                                                    worktree: Path) -> None:
    """go said and the FIFO gone before the launcher opened it (a slow start): it finds the
    spec and starts the agent."""
    tid = new_id()
    early = tmux_runtime.prestart(tid, worktree, first_start=True)
    early.opened.cancel()  # no tmux yet: deliver by hand, then start the session as tmux would
    await asyncio.gather(early.opened, return_exceptions=True)
    early.opened = asyncio.get_running_loop().create_task(asyncio.sleep(0))
    os.makedirs(early.fifo.parent, exist_ok=True)
    os.mkfifo(early.fifo, 0o600)
    early.fd = os.open(early.fifo, os.O_RDWR | os.O_NONBLOCK)
    await tmux_runtime.spawn(AgentLaunch(**{**demo_launch(tid, worktree, "hi\nFLEET-DEMO: stall 30").__dict__,
                                            "early": early}))
    assert not early.fifo.exists() and early.fd is None
    await tmux_runtime._new_session(tid, worktree, tmux_runtime.log_path(tid),
                                    [str(early.spec_path), str(early.fifo)])
    for _ in range(100):
        if "demo" in " ".join(await tmux_runtime.tail(tid)):
            break
        await asyncio.sleep(0.1)
    assert (await tmux_runtime.states())[tid].alive
    await tmux_runtime.kill(tid)


async def test_a_server_on_its_way_out_is_asked_again(tmux_runtime: TmuxRuntime, worktree: Path,
                                                      tmp_path: Path) -> None:
    """A retry kills its previous pane's session; when that was the server's last, the server
    exits, and a new-session sent meanwhile gets "server exited unexpectedly" (seen in this
    file's tests now and then): asked again, it starts a new server."""
    import shutil

    once = tmp_path / "answered-once"
    fake = tmp_path / "tmux"
    fake.write_text(f"#!/bin/sh\nif [ \"$5\" = new-session ] && [ ! -e {once} ]; then\n  : > {once}\n"
                    f"  echo 'server exited unexpectedly' >&2\n  exit 1\nfi\nexec {shutil.which('tmux')} \"$@\"\n")
    fake.chmod(0o755)
    runtime = TmuxRuntime(tmux_runtime.socket_name, tmux_runtime.log_dir, tmux_bin=str(fake))
    tid = new_id()
    state = await runtime.spawn(demo_launch(tid, worktree, "FLEET-DEMO: stall 30"))
    assert once.exists() and state.alive and await tmux_runtime.is_alive(tid)
    await tmux_runtime.kill(tid)
