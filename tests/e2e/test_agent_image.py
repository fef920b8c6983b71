"""Real agents in their image, behind the egress allow-list.

Each image is built by the console script (`fleet-tui image build --agent claude`, quick when
up to date: scripts/services builds them first in CI). A conductor runs each pinned CLI
(claude, codex, gemini, aider, opencode) in its image against the loopback fake of its model
API, reached only through the egress path (the conductor's allow-list proxy on a unix
socket, the launcher's loopback forwarder inside), and the agent commits as the user.
The probe is the repository's test command, which the agent itself runs with its shell tool
(aider has none: its run shows the rest):
so it runs inside the same container, as the agent's child, while the agent works, and it
tries every other address (the host's PostgreSQL, the API port, the host's own addresses,
the metadata address, the proxy asked for something else) and reads its limits."""

from __future__ import annotations

import asyncio
import json
import shlex
import socket
import subprocess
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Iterator

import docker
import pytest

from fleet_tui.domain.models import RuntimeKind, SpawnRequest
from fleet_tui.domain.status import TaskStatus
from fleet_tui.domain.models import SYSTEM
from fleet_tui.infra.agents import builtin_profiles
from fleet_tui.store import executions
from tests.e2e.test_conductor_flow import wait_for
from tests.e2e.test_docker_conductor import remove_new_containers  # noqa: F401 (autouse)
from tests.fakes.model_api import FakeModelApi, Step, agent_script
from tests.fixtures.engine import operator

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]
FLEET = ROOT / ".venv" / "bin" / "fleet-tui"
AGENT_UID = 1000
RESULT = "egress-probe.json"
PROBE = "egress_probe.py"
IDENTITY = ("Agent In A Box", "agent@test.invalid")  # the user's, in their ~/.gitconfig on the host

# Runs as the repository's test command: on the host (the conductor's CI) it does nothing;
# inside the container it records what it could reach and the limits it lives under.
PROBE_SOURCE = r'''
import json, os, socket, sys
SOCK = "/run/fleet-egress/egress.sock"
if not os.path.exists(SOCK):
    sys.exit(0)  # the conductor's own CI run, on the host
targets = json.loads(sys.argv[1])
def tcp(host, port):
    try:
        with socket.create_connection((host, port), timeout=3) as s:
            if port == targets["api_port"]:  # the fake model API answers HTTP
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return "open:" + s.recv(64).decode(errors="replace").split("\r\n")[0]
            return "open"
    except OSError as exc:
        return f"closed:{exc.__class__.__name__}"
def via_proxy(target):
    s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(SOCK)
    s.sendall(f"CONNECT {target} HTTP/1.1\r\n\r\n".encode())
    return s.recv(64).decode(errors="replace").split("\r\n")[0]
def read(*paths):  # cgroup v2 or v1, whichever the engine's host has
    for path in paths:
        try:
            return open(path).read().strip()
        except OSError:
            pass
    return "unreadable"
status = dict(line.split(":\t", 1) for line in read("/proc/self/status").splitlines() if ":\t" in line)
try:
    open("/rootfile", "w"); root = "writable"
except OSError:
    root = "readonly"
out = {
    "model_api": tcp("127.0.0.1", targets["api_port"]),
    "others": {f"{h}:{p}": tcp(h, p) for h, p in targets["others"]},
    "proxy_others": {t: via_proxy(t) for t in targets["proxy_others"]},
    "interfaces": sorted(os.listdir("/sys/class/net")),
    "uid": os.getuid(), "cap_eff": status.get("CapEff"), "no_new_privs": status.get("NoNewPrivs"),
    "seccomp": status.get("Seccomp"), "root": root,
    "pids_max": read("/sys/fs/cgroup/pids.max", "/sys/fs/cgroup/pids/pids.max"),
    "memory_max": read("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"),
}
open(sys.argv[2], "w").write(json.dumps(out))
'''


def build_image(agent: str) -> str:
    """Built by the product's own command (up to date in a second once built)."""
    done = subprocess.run([str(FLEET), "image", "build", "--agent", agent], capture_output=True, text=True,
                          timeout=1800)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="module")
def claude_image() -> str:
    return build_image("claude")


# What a user sets for each agent: its key and where the (here loopback) API is. claude, gemini
# and aider take a base URL from the environment (the egress allow-list follows it); codex
# and opencode are routed by a provider in their system config, a user's file bound
# read-only, so the profile's egress names the endpoint. GEMINI_SETTINGS: gemini's API-key
# login is chosen in its settings.
GEMINI_SETTINGS = {"security": {"auth": {"selectedType": "gemini-api-key"}},
                   "privacy": {"usageStatisticsEnabled": False},
                   "general": {"enableAutoUpdate": False, "maxAttempts": 1}}
AGENTS = ("aider", "claude", "codex", "gemini", "opencode")
SHELL_LESS = {"aider"}  # edits through text and commits itself: it runs no probe in the box


@dataclass
class Setup:
    env: dict[str, str]
    mounts: list[str] = field(default_factory=list)
    profile: dict[str, Any] = field(default_factory=dict)


def system_config(tmp_path: Path, name: str, filename: str, text: str) -> str:
    """A user's system-wide config of the CLI, bound read-only at /etc/NAME."""
    directory = tmp_path / f"etc-{name}"
    directory.mkdir()
    (directory / filename).write_text(text)
    return f"{directory}:/etc/{name}:ro"


def agent_setup(agent: str, api_url: str, port: int, tmp_path: Path) -> Setup:
    if agent == "claude":
        return Setup({"ANTHROPIC_BASE_URL": api_url, "ANTHROPIC_API_KEY": "sk-ant-test-0000"})
    if agent == "gemini":
        return Setup({"GOOGLE_GEMINI_BASE_URL": api_url, "GEMINI_API_KEY": "gm-test-0000"},
                     [system_config(tmp_path, "gemini-cli", "settings.json", json.dumps(GEMINI_SETTINGS))])
    if agent == "aider":
        return Setup({"OPENAI_API_BASE": f"{api_url}/v1", "OPENAI_API_KEY": "sk-test-0000"},
                     profile={"default_model": "openai/test-model"})
    endpoint = {"egress": [f"127.0.0.1:{port}"]}
    if agent == "codex":
        config = (f'model_provider = "fleetfake"\n[model_providers.fleetfake]\nname = "loopback fake"\n'
                  f'base_url = "{api_url}/v1"\nenv_key = "OPENAI_API_KEY"\nwire_api = "responses"\n'
                  "request_max_retries = 0\nstream_max_retries = 0\n")
        return Setup({"OPENAI_API_KEY": "sk-test-0000"},
                     [system_config(tmp_path, "codex", "config.toml", config)], endpoint)
    assert agent == "opencode"
    config = {"provider": {"fleetfake": {"npm": "@ai-sdk/openai-compatible", "name": "loopback fake",
                                         "options": {"baseURL": f"{api_url}/v1", "apiKey": "{env:OPENAI_API_KEY}"},
                                         "models": {"test-model": {"name": "test-model"}}}},
              "model": "fleetfake/test-model", "autoupdate": False, "share": "disabled"}
    return Setup({"OPENAI_API_KEY": "sk-test-0000"},
                 [system_config(tmp_path, "opencode", "opencode.json", json.dumps(config))], endpoint)


@pytest.fixture
def api_port_listener() -> Iterator[int]:
    """Stands for the conductor's HTTP API on the host's loopback: must stay out of reach."""
    server = socket.create_server(("127.0.0.1", 0), backlog=64)  # the kernel completes connections
    yield server.getsockname()[1]
    server.close()


def host_addresses() -> list[str]:
    """The host's own non-loopback addresses (eth0 and the like)."""
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    return [a for a in out if ":" not in a][:3]


def test_image_build_is_one_line_errors_and_a_cached_rebuild(claude_image: str) -> None:
    again = subprocess.run([str(FLEET), "image", "build", "--agent", "claude"], capture_output=True, text=True)
    assert again.returncode == 0 and again.stdout.strip() == claude_image
    assert "up to date" in again.stderr
    bad = subprocess.run([str(FLEET), "image", "build", "--agent", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--agent" in bad.stderr
    missing = subprocess.run([str(FLEET), "image", "build", "--agent", "claude", "--base", "no-such-base:1"],
                             capture_output=True, text=True)
    assert missing.returncode == 3 and "--base" in missing.stderr.splitlines()[-1]
    assert "Traceback" not in bad.stderr + missing.stderr
    client = docker.from_env()
    out = client.containers.run(claude_image, ["sh", "-c", ("id -u; git --version; claude --version; "
                                               "command -v node npm pip || true")],
                                remove=True, network_mode="none").decode()
    pinned = builtin_profiles()["claude"].packages[0].rsplit("@", 1)[1]
    assert out.splitlines()[0] == str(AGENT_UID)  # non-root by default
    assert "git version" in out and pinned in out  # the version the profile was proven on
    assert "/npm" not in out and "/pip" not in out  # no package manager in the image


@pytest.mark.parametrize("agent", AGENTS)
async def test_a_real_agent_in_its_image_reaches_ready_through_the_egress_path_and_nothing_else(
        make_conductor: Any, git_repo: Path, api_port_listener: int, monkeypatch: pytest.MonkeyPatch,
        agent: str, tmp_path: Path) -> None:
    image = build_image(agent)
    (git_repo / PROBE).write_text(PROBE_SOURCE)
    subprocess.run(["git", "-C", str(git_repo), "add", PROBE], check=True)
    subprocess.run(["git", "-C", str(git_repo), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm",
                    "probe"], check=True)
    subprocess.run(["chown", "-R", f"{AGENT_UID}:{AGENT_UID}", str(git_repo)], check=True)
    api = FakeModelApi([], workdir="/workspace").start()
    port = api.server.server_address[1]
    others = [["127.0.0.1", 5432], ["127.0.0.1", api_port_listener], ["169.254.169.254", 80],
              ["127.0.0.1", 4222], *[[a, port] for a in host_addresses()], *[[a, 5432] for a in host_addresses()]]
    targets = {"api_port": port, "others": others,
               "proxy_others": ["127.0.0.1:5432", f"127.0.0.1:{api_port_listener}", "169.254.169.254:80",
                                "api.anthropic.com:443"]}
    ci_command = ["python3", PROBE, json.dumps(targets, separators=(",", ":")), RESULT]
    test_command = shlex.join(ci_command)  # what the profile's permission rule allows
    api.script = [Step(path="hello.txt", text="hello from a box\n"), Step(command=test_command),
                  Step(command="git add hello.txt"), Step(command="git commit -m 'Add hello'"),
                  Step(text="Done: added hello.txt.")]
    setup = agent_setup(agent, api.url, port, tmp_path)
    for name, value in setup.env.items():
        monkeypatch.setenv(name, value)
    home = tmp_path / "home"  # the user's: a container has none, so their identity is given to it
    home.mkdir()
    (home / ".gitconfig").write_text(f"[user]\n\tname = {IDENTITY[0]}\n\temail = {IDENTITY[1]}\n")
    monkeypatch.setenv("HOME", str(home))
    profile = builtin_profiles()[agent]
    try:
        conductor = await make_conductor(
            runtime__default=RuntimeKind.DOCKER, runtime__docker_images={agent: image},
            runtime__docker_user="auto", runtime__docker_memory="1g", runtime__docker_pids_limit=200,
            runtime__stop_grace_s=2, forge__ci_command=ci_command, review__enabled=True,
            runtime__docker_mounts=setup.mounts,
            agents__profiles={agent: setup.profile} if setup.profile else {})
        await conductor.start()
        spawned = await conductor.spawn(operator(), SpawnRequest(description="Add hello.txt saying hello",
                                                                 repo=str(git_repo), agent=agent))
        assert spawned.task is not None, spawned
        task = await wait_for(conductor, spawned.task.id,
                              lambda t: t.status in (TaskStatus.READY, TaskStatus.FAILED, TaskStatus.ABANDONED),
                              timeout_s=180)
        lines = await conductor.logs(SYSTEM, task.id, 400)
        assert task.status == TaskStatus.READY, (task.failure_context, lines[-30:])
    finally:
        api.stop()
    assert api.requests, "the model API was never reached"
    shown = "\n".join(lines)
    assert not any(line.startswith('{"type"') for line in lines)  # rendered, not raw JSON
    if profile.stream:
        assert "[fleet] usage" in shown, lines[-20:]  # the launcher's summary, from inside the container
    (execution,) = await executions.list_for_task(conductor.parts.db, task.id, operator=None)
    assert execution["input_tokens"] and execution["output_tokens"]  # usage read back from it
    # it committed itself (codex too: in a container its sandbox is the container), as the user
    assert "conductor_committed" not in [row["action"] for row in (await conductor.detail(SYSTEM, task.id)).audit]
    author = subprocess.run(["git", "-c", "safe.directory=*", "-C", str(task.worktree_path), "log", "-1", "--format=%an <%ae>"],
                            capture_output=True, text=True).stdout.strip()
    assert author == f"{IDENTITY[0]} <{IDENTITY[1]}>"
    if agent in SHELL_LESS:
        return
    result = json.loads((Path(task.worktree_path) / RESULT).read_text())
    assert result["model_api"].startswith("open:HTTP/1."), result  # the one endpoint, via the forwarder
    assert all(v.startswith("closed") for v in result["others"].values()), result["others"]
    assert all(" 403 " in v for v in result["proxy_others"].values()), result["proxy_others"]
    assert result["interfaces"] == ["lo"]
    assert result["uid"] == AGENT_UID and result["cap_eff"] == "0000000000000000"
    assert result["no_new_privs"] == "1" and result["seccomp"] == "2" and result["root"] == "readonly"
    assert result["pids_max"] == "200" and result["memory_max"] == str(1024 ** 3)


# Inside the container: reach the allowed endpoint every 0.2 s and say how it went.
REACH_LOOP = r'''
import socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
for _ in range(600):
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            print("reach ok" if s.recv(16).startswith(b"HTTP/1.") else "reach failed", flush=True)
    except OSError:
        print("reach failed", flush=True)
    time.sleep(0.2)
'''


def reach_lines(task_id: str) -> list[str]:
    client = docker.from_env()
    [container] = client.containers.list(all=True, filters={"label": f"fleet-task-id={task_id}"})
    return [line for line in container.logs().decode().splitlines() if line.startswith("reach ")]


async def wait_for_line(task_id: str, wanted: str, after: int, timeout_s: float = 30) -> int:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        lines = reach_lines(task_id)
        if wanted in lines[after:]:
            return len(lines)
        await asyncio.sleep(0.3)
    raise AssertionError(f"no {wanted!r} after line {after}: {reach_lines(task_id)[-5:]}")


async def test_a_restarted_conductor_serves_a_live_containers_egress_again(
        make_conductor: Any, git_repo: Path, claude_image: str) -> None:
    api = FakeModelApi([]).start()
    port = api.server.server_address[1]
    settings = dict(runtime__default=RuntimeKind.DOCKER, runtime__docker_images={"boxed": claude_image},
                    runtime__docker_user="auto", runtime__stop_grace_s=2,
                    agents__profiles={"boxed": {"command": ["python3", "-c", REACH_LOOP, "127.0.0.1", str(port)],
                                                "egress": [f"127.0.0.1:{port}"]}})
    subprocess.run(["chown", "-R", f"{AGENT_UID}:{AGENT_UID}", str(git_repo)], check=True)
    try:
        first = await make_conductor(**settings)
        spawned = await first.spawn(operator(), SpawnRequest(description="reach out", repo=str(git_repo),
                                                             agent="boxed"))
        assert spawned.task is not None and spawned.task.status == TaskStatus.RUNNING, spawned
        task_id = spawned.task.id
        seen = await wait_for_line(task_id, "reach ok", 0)
        await first.runtime_for(RuntimeKind.DOCKER).aclose()  # what the conductor's shutdown does
        seen = await wait_for_line(task_id, "reach failed", seen)  # its way out went with it
        restarted = await make_conductor(same_db=first, **settings)
        await restarted.start(monitor=False)
        for _ in range(60):  # once the first one's lease lapses, the live container is claimed ...
            await restarted.monitor.run_cycle()
            if "reach ok" in reach_lines(task_id)[seen:]:
                break  # ... and its allow-list served again on the same socket
            await asyncio.sleep(0.5)
        await wait_for_line(task_id, "reach ok", seen, timeout_s=2)
        await restarted.stop(SYSTEM, task_id)
    finally:
        api.stop()


DENIED = "curl -s http://127.0.0.1:9/"


async def test_a_person_answers_a_contained_claude_and_its_session_goes_on(
        make_conductor: Any, git_repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        claude_image: str) -> None:
    """claude in its image asks (a refused command); the person answers from the shell and
    the answer reaches the same conversation, in a new container. claude keeps its session
    under HOME, which was each container's fresh /tmp: `--continue` found nothing."""
    from tests.contract.harness import answer_and_finish, drive

    subprocess.run(["chown", "-R", f"{AGENT_UID}:{AGENT_UID}", str(git_repo)], check=True)
    ci_command = ["python3", "-c", "import pathlib,sys; sys.exit(0 if pathlib.Path('.git').exists() else 1)"]
    api = FakeModelApi([Step(command=DENIED), Step(text="(never said: the refusal ends the first run)"),
                        *agent_script(test_command=shlex.join(ci_command), commit=True)],
                       workdir="/workspace", stop_when_refused=True).start()
    for name, value in agent_setup("claude", api.url, api.server.server_address[1], tmp_path).env.items():
        monkeypatch.setenv(name, value)
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(f"[user]\n\tname = {IDENTITY[0]}\n\temail = {IDENTITY[1]}\n")
    monkeypatch.setenv("HOME", str(home))
    try:
        run = await drive(make_conductor, git_repo, agent="claude", api=api, timeout_s=180,
                          runtime__default=RuntimeKind.DOCKER, runtime__docker_images={"claude": claude_image},
                          runtime__docker_user="auto", runtime__stop_grace_s=2, forge__ci_command=ci_command)
        assert run.task.needs_input and run.task.failure_reason == "permission_denied", run.task.failure_context
        await answer_and_finish(run, DENIED)
    finally:
        api.stop()


async def test_the_demo_agent_runs_in_a_container_and_its_change_reaches_ready(
        make_conductor: Any, git_repo: Path, claude_image: str) -> None:
    """The built-in demo agent under the docker runtime: its {python} was the conductor's own
    interpreter, a path that does not exist in the image, and every attempt exited 127."""
    subprocess.run(["chown", "-R", f"{AGENT_UID}:{AGENT_UID}", str(git_repo)], check=True)
    conductor = await make_conductor(runtime__default=RuntimeKind.DOCKER, runtime__docker_images={"demo": claude_image},
                                     runtime__docker_user="auto", runtime__stop_grace_s=2)
    spawned = await conductor.spawn(operator(), SpawnRequest(
        description="boxed demo\nFLEET-DEMO: write notes.md hello from the box", repo=str(git_repo), agent="demo",
        max_retries=0))
    assert spawned.task is not None and spawned.task.status == TaskStatus.RUNNING, spawned
    await conductor.start()
    task = await wait_for(conductor, spawned.task.id,
                          lambda t: t.status not in (TaskStatus.SPAWNING, TaskStatus.RUNNING), timeout_s=90)
    attempts = await executions.list_for_task(conductor.parts.db, task.id, operator=None)
    assert task.status != TaskStatus.FAILED, (task.failure_reason, task.failure_context, attempts)
    assert "hello from the box" in await conductor.diff(SYSTEM, task.id)
    logs = "\n".join(await conductor.logs(SYSTEM, task.id))
    assert "[demo] committed" in logs, logs
