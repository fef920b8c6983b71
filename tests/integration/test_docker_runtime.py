"""DockerRuntime against the real Docker engine and the locally built busybox image.

The hardening is proved from inside running containers (their own /proc and syscalls),
not from the create arguments alone. No skip: an unreachable engine fails loudly.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from collections.abc import Callable

import docker
import pytest

from fleet_tui.config import RuntimeSettings
from fleet_tui.domain.errors import SpawnError, SpawnErrorCode
from fleet_tui.domain.models import RuntimeKind
from fleet_tui.infra import docker_runtime as dr
from fleet_tui.infra.docker_runtime import LABEL_EGRESS, DockerRuntime, container_name
from fleet_tui.infra.egress import SOCKET_DIR_IN_CONTAINER, EgressProxy, parse_endpoint
from fleet_tui.infra.protocols import AgentLaunch, ProcessState, Runtime
from tests.fixtures.gitrepo import git, make_repo

pytestmark = [pytest.mark.docker, pytest.mark.timeout(120)]

IMAGE = "fleet-agent-test:latest"
ROOT = Path(__file__).resolve().parents[2]
AGENT_UID = 1000


@pytest.fixture(scope="session")
def docker_client() -> Any:
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # any failure here means no engine: fail, never skip
        pytest.fail(
            f"Docker engine unreachable (DOCKER_HOST={os.environ.get('DOCKER_HOST', 'unset')}):"
            f" {exc}. Start it with `bash scripts/services`.",
            pytrace=False,
        )
    try:
        client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        built = subprocess.run(
            ["bash", str(ROOT / "scripts" / "build-test-image")], capture_output=True, text=True
        )
        if built.returncode != 0:
            pytest.fail(f"could not build {IMAGE}: {built.stderr}", pytrace=False)
    return client


@pytest.fixture
def task_ids(docker_client: Any) -> Any:
    """Unique task ids; their containers (and only theirs) are removed afterwards."""
    made: list[str] = []

    def new() -> str:
        made.append(f"dkrt-{uuid.uuid4().hex[:10]}")
        return made[-1]

    yield new
    for task_id in made:
        try:
            docker_client.containers.get(container_name(task_id)).remove(force=True)
        except docker.errors.NotFound:
            pass


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    os.chown(path, AGENT_UID, AGENT_UID)  # the container user must be able to write
    return path


@pytest.fixture
def make_runtime(tmp_path: Path, docker_client: Any) -> Callable[..., DockerRuntime]:
    def make(**overrides: Any) -> DockerRuntime:
        options: dict[str, Any] = dict(
            log_dir=tmp_path / "logs", memory="128m", cpus=1.0, pids_limit=64, stop_grace_s=2
        )
        options.update(overrides)
        return DockerRuntime(IMAGE, **options)

    return make


def sh(script: str) -> list[str]:
    """A fixed test script run by busybox sh (test text, not user text)."""
    return ["/bin/sh", "-c", script]


async def wait_exit(runtime: DockerRuntime, task_id: str, within_s: float = 20) -> ProcessState:
    for _ in range(int(within_s * 10)):
        state = await runtime.exit_status(task_id)
        assert state is not None, "container vanished"
        if not state.alive:
            return state
        await asyncio.sleep(0.1)
    raise AssertionError(f"{task_id} still running after {within_s}s")


def containers_named(client: Any, task_id: str) -> list[Any]:
    return client.containers.list(all=True, filters={"name": f"^/{container_name(task_id)}$"})


# --- hardening, proved from inside ---------------------------------------------------------

HARDENING_PROBE = r"""
grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status
echo "uid=$(id -u)"
touch /rootfile 2>/dev/null && echo root=writable || echo root=readonly
touch /tmp/t && echo tmp=writable
touch /workspace/w && echo workspace=writable
echo "net=$(ls /sys/class/net | tr '\n' ' ')"
unshare -U true 2>/dev/null && echo unshare=allowed || echo unshare=denied
wget -q -T 2 -O /dev/null http://1.1.1.1/ 2>/dev/null && echo egress=open || echo egress=blocked
echo "prompt=$(cat)"
"""


async def test_container_is_hardened_from_inside(
    make_runtime: Callable[..., DockerRuntime], task_ids: Callable[[], str], workdir: Path,
    docker_client: Any,
) -> None:
    runtime = make_runtime()
    assert isinstance(runtime, Runtime) and runtime.kind is RuntimeKind.DOCKER
    task_id = task_ids()
    state = await runtime.spawn(
        AgentLaunch(task_id, workdir, sh(HARDENING_PROBE), prompt="fix the login test")
    )
    assert state.ref and state.task_id == task_id
    done = await wait_exit(runtime, task_id)
    assert done.exit_code == 0 and not done.oom_killed
    out = "\n".join(await runtime.tail(task_id, 50))
    assert "CapEff:\t0000000000000000" in out
    assert "NoNewPrivs:\t1" in out
    assert "Seccomp:\t2" in out
    assert f"uid={AGENT_UID}" in out
    assert "root=readonly" in out
    assert "tmp=writable" in out and "workspace=writable" in out
    assert "net=lo " in out  # loopback only
    assert "unshare=denied" in out  # our seccomp profile (user namespaces need no caps)
    assert "egress=blocked" in out
    assert "prompt=fix the login test" in out  # the prompt arrived on stdin
    assert (workdir / "w").exists()  # the worktree is the bind at /workspace

    attrs = docker_client.containers.get(container_name(task_id)).attrs
    host = attrs["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert host["NetworkMode"] == "none"
    assert host["Memory"] == 128 * 1024 * 1024 and host["PidsLimit"] == 64
    assert host["NanoCpus"] == 1_000_000_000
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert any(o.startswith("seccomp=") and "unshare" in o for o in host["SecurityOpt"])
    assert attrs["Config"]["Labels"] == {"fleet": "true", "fleet-task-id": task_id}
    argv_seen = " ".join(attrs["Config"]["Entrypoint"] + (attrs["Config"]["Cmd"] or []))
    assert "fix the login test" not in argv_seen  # never on the command line
    await runtime.kill(task_id)


async def test_fork_bomb_stops_at_pids_limit(
    make_runtime: Callable[..., DockerRuntime], task_ids: Callable[[], str], workdir: Path
) -> None:
    runtime = make_runtime(pids_limit=24)
    task_id = task_ids()
    # The bomb runs in a subshell that dies on its first failed fork; the parent then
    # reports with builtins only (every pid is taken by the sleeping children).
    bomb = r"""
( while :; do sleep 30 & done ) 2>&1
echo bomb-contained
for f in /sys/fs/cgroup/pids/pids.current /sys/fs/cgroup/pids.current; do
  [ -r "$f" ] && { read n < "$f"; echo "pids=$n"; }
done
"""
    await runtime.spawn(AgentLaunch(task_id, workdir, sh(bomb), prompt=""))
    await wait_exit(runtime, task_id)
    out = await runtime.tail(task_id, 200)
    assert "bomb-contained" in out
    assert any("can't fork" in line for line in out)
    pids = [int(line.split("=")[1]) for line in out if line.startswith("pids=")]
    assert pids and pids[0] <= 24
    await runtime.kill(task_id)


async def test_memory_hog_exits_137_oom_killed(
    make_runtime: Callable[..., DockerRuntime], task_ids: Callable[[], str], workdir: Path
) -> None:
    runtime = make_runtime(memory="64m")
    task_id = task_ids()
    # dd fills a 256 MiB buffer from /dev/zero, touching every page.
    hog = ["dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1"]
    await runtime.spawn(AgentLaunch(task_id, workdir, hog, prompt=""))
    state = await wait_exit(runtime, task_id)
    assert state.exit_code == 137
    assert state.oom_killed is True
    listed = (await runtime.states())[task_id]
    assert listed.exit_code == 137 and listed.oom_killed and not listed.alive
    await runtime.kill(task_id)


# --- secrets ------------------------------------------------------------------------------

async def test_secrets_reach_the_agent_but_no_file_or_log_keeps_them(
    make_runtime: Callable[..., DockerRuntime], task_ids: Callable[[], str], workdir: Path,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "sk-" + uuid.uuid4().hex * 2
    seen: list[tuple[Path, int]] = []
    real_write = dr._write_env_file

    def spy(env: dict[str, str]) -> tuple[Path, Path]:
        env_dir, env_file = real_write(env)
        seen.append((env_file, env_file.stat().st_mode & 0o777))
        return env_dir, env_file

    monkeypatch.setattr(dr, "_write_env_file", spy)
    caplog.set_level(logging.DEBUG)
    runtime = make_runtime()
    task_id = task_ids()
    script = 'printf %s "$FLEET_TEST_SECRET" | sha256sum'
    await runtime.spawn(
        AgentLaunch(task_id, workdir, sh(script), prompt="", env={"FLEET_TEST_SECRET": secret})
    )
    [(env_file, mode)] = seen
    assert mode == 0o600
    assert not env_file.exists() and not env_file.parent.exists()  # gone once started
    await wait_exit(runtime, task_id)
    out = "\n".join(await runtime.tail(task_id, 5))
    assert hashlib.sha256(secret.encode()).hexdigest() in out
    assert secret not in caplog.text
    await runtime.kill(task_id)

    # A failing spawn neither leaks the secret in its message nor leaves the file behind.
    seen.clear()
    broken = make_runtime(user="no-such-user")
    other = task_ids()
    with pytest.raises(SpawnError) as raised:
        await broken.spawn(AgentLaunch(other, workdir, ["true"], prompt="", env={"K": secret}))
    assert secret not in str(raised.value) and secret not in caplog.text
    assert seen and not seen[0][0].parent.exists()


# --- spawn failures clean up ----------------------------------------------------------------

@pytest.mark.parametrize(
    "step, code",
    [
        ("worktree-missing", SpawnErrorCode.PROCESS_FAILED),
        ("image-missing", SpawnErrorCode.PROCESS_FAILED),  # create fails
        ("mount-missing", SpawnErrorCode.PROCESS_FAILED),  # create fails
        ("start-fails", SpawnErrorCode.PROCESS_FAILED),  # created, start refused
        ("timeout", SpawnErrorCode.TIMEOUT),  # created late, after the deadline
    ],
)
async def test_spawn_failure_leaves_nothing_behind(
    step: str, code: SpawnErrorCode, make_runtime: Callable[..., DockerRuntime],
    task_ids: Callable[[], str], workdir: Path, tmp_path: Path, docker_client: Any,
) -> None:
    options: dict[str, Any] = {}
    work = workdir
    if step == "worktree-missing":
        work = tmp_path / "absent"
    elif step == "mount-missing":
        options["extra_mounts"] = [(str(tmp_path / "absent"), "/opt/x", "ro")]
    elif step == "start-fails":
        options["user"] = "no-such-user"  # only the runtime (runc) resolves it, at start
    elif step == "timeout":
        options["spawn_timeout_s"] = 0.001
    runtime = make_runtime(**options)
    if step == "image-missing":
        runtime.image = "fleet-no-such-image:never"
    task_id = task_ids()
    with pytest.raises(SpawnError) as raised:
        await runtime.spawn(AgentLaunch(task_id, work, ["sleep", "30"], prompt="p"))
    assert raised.value.code is code
    assert containers_named(docker_client, task_id) == []
    assert not (tmp_path / "logs" / task_id).exists()


async def test_running_container_is_never_replaced_but_exited_one_is(
    make_runtime: Callable[..., DockerRuntime], task_ids: Callable[[], str], workdir: Path,
    docker_client: Any,
) -> None:
    runtime = make_runtime()
    task_id = task_ids()
    first = await runtime.spawn(AgentLaunch(task_id, workdir, ["sleep", "60"], prompt=""))
    with pytest.raises(SpawnError, match="already has a running container"):
        await runtime.spawn(AgentLaunch(task_id, workdir, ["sleep", "60"], prompt=""))
    assert await runtime.is_alive(task_id)  # the failed spawn did not touch it
    assert (await runtime.exit_status(task_id)).ref == first.ref
    await asyncio.to_thread(docker_client.containers.get(first.ref).kill)
    await wait_exit(runtime, task_id)
    second = await runtime.spawn(AgentLaunch(task_id, workdir, ["sleep", "60"], prompt=""))
    assert second.ref != first.ref and second.alive
    await runtime.kill(task_id)


# --- lifecycle and logs ----------------------------------------------------------------------

async def test_list_active_states_and_kill(
    make_runtime: Callable[..., DockerRuntime], task_ids: Callable[[], str], workdir: Path,
    docker_client: Any,
) -> None:
    runtime = make_runtime()
    live, exited = task_ids(), task_ids()
    await runtime.spawn(AgentLaunch(live, workdir, ["sleep", "300"], prompt=""))
    await runtime.spawn(AgentLaunch(exited, workdir, sh("exit 3"), prompt=""))
    assert (await wait_exit(runtime, exited)).exit_code == 3
    assert await runtime.is_alive(live)
    active = {s.task_id for s in await runtime.list_active()}
    assert live in active and exited not in active
    states = await runtime.states()
    assert states[live].alive and states[live].exit_code is None
    assert not states[exited].alive and states[exited].exit_code == 3
    await runtime.kill(live)  # sleep is not PID 1 (init), so SIGTERM ends it
    assert containers_named(docker_client, live) == []
    assert not await runtime.is_alive(live)
    assert await runtime.exit_status(live) is None
    await runtime.kill(live)  # idempotent
    await runtime.kill(exited)
    assert containers_named(docker_client, exited) == []
    await runtime.send_input(live, "y\n")  # documented no-op, must not raise


async def test_tail_and_stream_lines(
    make_runtime: Callable[..., DockerRuntime], task_ids: Callable[[], str], workdir: Path
) -> None:
    runtime = make_runtime()
    task_id = task_ids()
    # stdout and stderr are separate pipes: pause between them so the order is defined.
    script = ("for i in 1 2 3; do echo line-$i; done; sleep 0.3; echo err-1 >&2; sleep 0.7;"
              " echo line-4")
    await runtime.spawn(AgentLaunch(task_id, workdir, sh(script), prompt=""))
    lines = [line async for line in runtime.stream(task_id)]  # ends when the container exits
    assert lines == ["line-1", "line-2", "line-3", "err-1", "line-4"]
    assert await runtime.tail(task_id, 2) == ["err-1", "line-4"]
    assert await runtime.tail("dkrt-none-such", 5) == []
    stamp = await runtime.last_output_at(task_id)
    assert stamp is not None and abs(stamp - time.time()) < 120  # engine clock, same host
    assert await runtime.last_output_at("dkrt-none-such") is None
    await runtime.kill(task_id)


async def test_read_from_gets_every_entry_once_though_many_share_a_millisecond(
    make_runtime: Callable[..., DockerRuntime], task_ids: Callable[[], str], workdir: Path
) -> None:
    runtime = make_runtime()
    task_id = task_ids()
    script = "i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done; printf last-words"
    await runtime.spawn(AgentLaunch(task_id, workdir, sh(script), prompt=""))
    read: list[str] = []
    cursor, shared = 0, 0
    while True:  # read on while it writes, in reads that end inside a millisecond
        alive = await runtime.is_alive(task_id)
        lines, cursor = await runtime.read_from(task_id, cursor, 97)
        read.extend(lines)
        shared = max(shared, dr.LogCursor.unpack(cursor).seen)
        if not lines and not alive:
            break
    assert read == [f"line-{i}" for i in range(3000)] + ["last-words"]
    assert shared > 1  # reads did end between entries of one millisecond
    for n in (1, 2, 5):  # a tail's cursor, even inside one millisecond, is just after it
        tail, after = await runtime.read_from(task_id, None, n)
        assert tail == read[-n:] and await runtime.read_from(task_id, after, 10) == ([], after)
    assert await runtime.read_from("dkrt-none-such", None, 5) == ([], 0)
    await runtime.kill(task_id)


async def test_stream_stops_when_the_consumer_stops(
    make_runtime: Callable[..., DockerRuntime], task_ids: Callable[[], str], workdir: Path
) -> None:
    runtime = make_runtime()
    task_id = task_ids()
    await runtime.spawn(
        AgentLaunch(task_id, workdir, sh("while :; do echo tick; sleep 0.1; done"), prompt="")
    )
    stream = runtime.stream(task_id)
    first = [await stream.__anext__() for _ in range(3)]
    await stream.aclose()  # closes the engine stream; the reader thread ends
    assert first == ["tick"] * 3
    assert await runtime.is_alive(task_id)
    await runtime.kill(task_id)


# --- the demo agent inside a container, with the host's python and git bound read-only -------

async def test_demo_agent_commits_inside_container(
    make_runtime: Callable[..., DockerRuntime], task_ids: Callable[[], str], tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo")
    worktree = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "task/demo", str(worktree), "main")
    subprocess.run(["chown", "-R", f"{AGENT_UID}:{AGENT_UID}", str(repo), str(worktree)],
                   check=True)
    mounts = [("/usr", "/usr", "ro"), (sys.base_prefix, sys.base_prefix, "ro"),
              (str(ROOT), str(ROOT), "ro")]
    runtime = make_runtime(memory="512m", pids_limit=128, extra_mounts=mounts)
    task_id = task_ids()
    prompt = "Add a greeting\nFLEET-DEMO: write hello.txt hi from a container\n"
    await runtime.spawn(
        AgentLaunch(task_id, worktree, [sys.executable, "-m", "fleet_tui.infra.demo_agent"],
                    prompt=prompt, git_admin=repo / ".git" / "worktrees" / "wt", git_common=repo / ".git",
                    git_branch="task/demo")
    )
    state = await wait_exit(runtime, task_id, within_s=30)
    output = "\n".join(await runtime.tail(task_id, 50))
    assert state.exit_code == 0, output
    assert (worktree / "hello.txt").read_text().startswith("hi from a container")
    # The host runs git as root over files the agent (uid 1000) now owns.
    assert git(worktree, "-c", "safe.directory=*", "rev-list", "--count", "main..HEAD") == "1"
    await runtime.kill(task_id)


async def test_agent_cannot_plant_hooks_or_config_in_the_users_repository(
    make_runtime: Callable[..., DockerRuntime], task_ids: Callable[[], str], tmp_path: Path
) -> None:
    """The common git dir is shared with the user's own checkout, whose git runs its hooks
    and obeys its config: only what a commit on the task branch writes is writable from the
    container (objects, that branch's ref and reflog, the worktree's admin dir)."""
    repo = make_repo(tmp_path / "repo")
    worktree = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "task/probe", str(worktree), "main")
    subprocess.run(["chown", "-R", f"{AGENT_UID}:{AGENT_UID}", str(repo), str(worktree)], check=True)
    common, admin = repo / ".git", repo / ".git" / "worktrees" / "wt"
    probe = "\n".join(
        f"touch {path} 2>/dev/null && echo {name}=writable || echo {name}=readonly"
        for name, path in [("hooks", common / "hooks" / "post-checkout"), ("config", common / "config.new"),
                           ("packed", common / "packed-refs.lock"), ("objects", common / "objects" / "probe"),
                           ("refs", common / "refs" / "heads" / "probe.lock"), ("logs", common / "logs" / "probe"),
                           ("alternates", common / "objects" / "info" / "alternates"),
                           ("branch", common / "refs" / "heads" / "task" / "probe.lock"),
                           ("reflog", common / "logs" / "refs" / "heads" / "task" / "probe.lock"),
                           ("admin", admin / "probe")])
    config_before = (common / "config").read_bytes()
    runtime = make_runtime()
    task_id = task_ids()
    await runtime.spawn(AgentLaunch(task_id, worktree, sh(probe + "\necho x >> " + str(common / "config")),
                                    prompt="", git_admin=admin, git_common=common, git_branch="task/probe"))
    await wait_exit(runtime, task_id)
    out = "\n".join(await runtime.tail(task_id, 50))
    for name in ("hooks", "config", "packed", "refs", "logs", "alternates"):
        assert f"{name}=readonly" in out, out
    for name in ("objects", "branch", "reflog", "admin"):
        assert f"{name}=writable" in out, out
    assert (common / "config").read_bytes() == config_before
    assert not (common / "hooks" / "post-checkout").exists()
    await runtime.kill(task_id)


async def test_file_prompt_profile_reads_the_bound_prompt_file(
    make_runtime: Callable[..., DockerRuntime], task_ids: Callable[[], str], workdir: Path
) -> None:
    runtime = make_runtime()
    task_id = task_ids()
    prompt = "line one; $(not expanded) `nor this`\nline two"
    await runtime.spawn(
        AgentLaunch(task_id, workdir, ["cat", "{prompt_file}"], prompt=prompt, prompt_via="file")
    )
    await wait_exit(runtime, task_id)
    assert await runtime.tail(task_id, 10) == prompt.splitlines()
    await runtime.kill(task_id)
    assert not (runtime.log_dir / task_id).exists()  # kill drops the prompt dir too


async def test_named_network_is_joined(
    make_runtime: Callable[..., DockerRuntime], task_ids: Callable[[], str], workdir: Path,
    docker_client: Any,
) -> None:
    network = docker_client.networks.create(f"fleet-dkrt-{uuid.uuid4().hex[:8]}", internal=True)
    try:
        runtime = make_runtime(network=network.name)
        task_id = task_ids()
        await runtime.spawn(AgentLaunch(task_id, workdir, sh("ls /sys/class/net"), prompt=""))
        await wait_exit(runtime, task_id)
        assert sorted(await runtime.tail(task_id, 5)) == ["eth0", "lo"]
        await runtime.kill(task_id)
    finally:
        network.remove()


def test_from_settings_takes_the_configured_limits(tmp_path: Path) -> None:
    settings = RuntimeSettings(docker_image="img:1", docker_memory="1g", docker_pids_limit=99,
                               docker_network="fleet-egress", stop_grace_s=7)
    runtime = DockerRuntime.from_settings(settings, log_dir=tmp_path, cpus=0.5)
    assert (runtime.image, runtime.memory, runtime.pids_limit) == ("img:1", "1g", 99)
    assert (runtime.network, runtime.stop_grace_s, runtime.cpus) == ("fleet-egress", 7, 0.5)


async def test_unreachable_engine_is_a_spawn_error_naming_the_cause(
    tmp_path: Path, workdir: Path
) -> None:
    def nowhere() -> Any:
        return docker.DockerClient(base_url=f"unix://{tmp_path}/no-docker.sock")

    runtime = DockerRuntime(IMAGE, log_dir=tmp_path / "logs", client_factory=nowhere)
    with pytest.raises(SpawnError) as raised:
        await runtime.spawn(AgentLaunch("dkrt-unreachable", workdir, ["true"], prompt="p"))
    assert raised.value.code is SpawnErrorCode.PROCESS_FAILED
    assert "docker engine unreachable" in str(raised.value)
    assert not (tmp_path / "logs" / "dkrt-unreachable").exists()


def test_an_agent_commits_as_the_repositorys_user_not_as_what_its_worktree_says(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The identity given to a container comes from the repository the task record names,
    never through the worktree, whose own config an agent can write (its admin dir is bound
    read-write): a git identity is read with the user's config, not the agent's."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.gitconfig
    repo = make_repo(tmp_path / "repo")
    git(repo, "config", "user.name", "Repo User")
    git(repo, "config", "user.email", "repo@test.invalid")
    git(repo, "config", "extensions.worktreeConfig", "true")
    worktree = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "task", str(worktree))
    git(worktree, "config", "--worktree", "user.name", "Written By The Agent")
    env = dr.host_git_identity(repo / ".git")
    assert env == {"GIT_CONFIG_COUNT": "2", "GIT_CONFIG_KEY_0": "user.name", "GIT_CONFIG_VALUE_0": "Repo User",
                   "GIT_CONFIG_KEY_1": "user.email", "GIT_CONFIG_VALUE_1": "repo@test.invalid"}
    git(repo, "config", "--unset", "user.name")
    git(repo, "config", "--unset", "user.email")
    assert dr.host_git_identity(repo / ".git") == {}  # none on the host: none in the box


async def test_a_resumed_agent_finds_the_home_its_first_run_left(
    make_runtime: Callable[..., DockerRuntime], task_ids: Callable[[], str], workdir: Path,
) -> None:
    """A CLI keeps its session under $HOME (claude's ~/.claude, opencode's database): a resume
    (an answer, a vanished agent) runs a new container, and its HOME was a fresh tmpfs /tmp,
    so `--continue` found nothing. The task's home stays with the task until it is deleted."""
    runtime = make_runtime()
    task_id = task_ids()
    await runtime.spawn(AgentLaunch(task_id, workdir, sh('echo "asked: x" > "$HOME/session"; echo first'),
                                    prompt=""))
    assert (await wait_exit(runtime, task_id)).exit_code == 0
    await runtime.spawn(AgentLaunch(task_id, workdir, sh('echo "home=$HOME"; cat "$HOME/session"'), prompt=""))
    assert (await wait_exit(runtime, task_id)).exit_code == 0
    lines = await runtime.tail(task_id, 10)
    assert "asked: x" in lines, lines
    await runtime.kill(task_id)  # a stop keeps it: the task may still be answered
    await runtime.spawn(AgentLaunch(task_id, workdir, sh('cat "$HOME/session"'), prompt=""))
    await wait_exit(runtime, task_id)
    assert "asked: x" in await runtime.tail(task_id, 10)
    await runtime.forget(task_id)  # deleting the task deletes its home
    await runtime.spawn(AgentLaunch(task_id, workdir, sh('cat "$HOME/session" || echo no-session'), prompt=""))
    await wait_exit(runtime, task_id)
    assert "no-session" in await runtime.tail(task_id, 10)
    await runtime.forget(task_id)


async def test_a_tasks_new_container_gets_its_egress_served_though_an_earlier_one_was(
    make_runtime: Callable[..., DockerRuntime], tmp_path: Path,
) -> None:
    """An answer or a retry from the shell starts the task's next container in that short
    process, on a new socket dir; the conductor still held the proxy of the task's earlier
    container, so its monitor never served the new one (the agent waited for its model API
    until the CLI's proxy was gone for good: 'stuck in running')."""
    conductor = make_runtime()
    earlier = EgressProxy("dkrt-egress01", [parse_endpoint("127.0.0.1:9")])
    await earlier.start()
    conductor._proxies["dkrt-egress01"] = earlier  # served since the task's first container
    new_dir = tmp_path / "new-container-socket"
    new_dir.mkdir()
    row = {"Labels": {LABEL_EGRESS: "127.0.0.1:9"},
           "Mounts": [{"Destination": SOCKET_DIR_IN_CONTAINER, "Source": str(new_dir)}]}
    await conductor._serve_egress_again("dkrt-egress01", row)
    assert conductor._proxies["dkrt-egress01"].dir == new_dir and (new_dir / "egress.sock").exists()
    assert not earlier.dir.exists()  # the earlier container's socket dir went with its proxy
    await conductor.aclose()
