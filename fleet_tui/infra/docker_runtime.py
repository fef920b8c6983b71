"""The hardened Docker runtime: one container per task, driven through the docker SDK.

Every container runs with a read-only root, tmpfs /tmp, the task worktree bound at
/workspace, the task's own HOME (/home/fleet, kept across its containers until the task is
deleted, so a resumed CLI finds its session), memory/CPU/pids limits, no-new-privileges, every capability dropped, the
seccomp profile shipped in fleet_tui/infra/seccomp/agent.json, a non-root user, network
`none` (or a named network) and the labels fleet=true / fleet-task-id=<id>. DOCKER_HOST
(through docker.from_env) selects the engine. The SDK blocks, so every call runs in
asyncio.to_thread.

Seccomp choice: a deny-list (default allow; EPERM for mounts, namespaces - including
clone with CLONE_NEW* flags, clone3 as ENOSYS so libc falls back to the filtered clone -,
ptrace and process_vm_*, modules, kexec, bpf, perf, keyrings, io_uring, userfaultfd,
clock/swap/reboot). Trade-off: whatever toolchain an agent brings (python, node, git,
compilers) keeps working without profile maintenance, at the price that a syscall added
to future kernels is allowed until listed. The allow-listed Docker default is stricter
there; the capability drop, no-new-privileges and the non-root user cover most of the gap.

Prompt: written to <log_dir>/<task>/prompt.txt, bound read-only at /fleet. stdin profiles
run under a fixed wrapper `exec "$@" < /fleet/prompt.txt` (user text is only ever a
positional argument, never inside the -c string); file profiles get their {prompt_file}
token bound to /fleet/prompt.txt. The image must provide /bin/sh for stdin profiles.

Secrets: launch.env is written to an env file of mode 0600 in a private 0700 temp dir,
read back as the container's environment at create time (what `docker run --env-file`
does) and deleted, with its dir, as soon as start returns or fails. They never reach our
logs or error messages (engine messages are redacted). Being container config, they are
visible to whoever can inspect the container on the engine - who could exec into it too.

Launcher: a profile with a JSON event stream, or with egress, runs under the tmux runtime's
launcher (infra/launcher.py, bound read-only at /opt/fleet-launcher with its siblings and
run by the image's python3), so a container's log is the same readable rendering with the
same [fleet] summary lines (usage, session id, outcome). Its spec (/fleet/launch.json) holds
no secrets: those are the container's environment.

Egress (runtime.docker_egress): "allowlist" gives a container whose profile names model
endpoints a way to them and to nothing else (infra/egress.py: a per-task allow-list proxy
on a unix socket, loopback forwarders inside); "none", or a profile without endpoints,
leaves network "none" with no way out at all.

Containers are not auto-removed: the exit code and OOMKilled stay readable until kill()
stops (grace stop_grace_s) and removes them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
from contextlib import closing
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Iterator, Sequence

import docker
from docker.errors import DockerException, NotFound
from docker.types import LogConfig, Mount

from fleet_tui.config import RuntimeSettings
from fleet_tui.domain.errors import (
    FleetError,
    ImageMissingError,
    RuntimeUnavailableError,
    SpawnError,
    SpawnErrorCode,
)
from fleet_tui.domain.models import RuntimeKind
from fleet_tui.infra import launcher as launcher_module
from fleet_tui.infra.agent_image import IMAGE_AGENTS, IMAGE_REPOSITORY, image_tag
import fleet_tui
from fleet_tui.infra.agents import CONTAINER_PYTHON, bind_prompt_file
from fleet_tui.infra.egress import (
    SOCKET_DIR_IN_CONTAINER,
    SOCKET_NAME,
    EgressProxy,
    ProxyInUse,
    endpoints_for,
    forwards_for,
    parse_endpoint,
)
from fleet_tui.infra.filetail import decode_line
from fleet_tui.infra.git import config_env
from fleet_tui.infra.protocols import AgentLaunch, ProcessState
from fleet_tui.infra.ref_spool import link_branch, settle_branch

log = logging.getLogger(__name__)

DEFAULT_SECCOMP_PROFILE = Path(__file__).with_name("seccomp") / "agent.json"
LABEL_FLEET = "fleet"
LABEL_TASK = "fleet-task-id"
LABEL_EGRESS = "fleet-egress"  # the allow-list, so that a restarted conductor serves it again
HOME_IN_CONTAINER = "/home/fleet"  # the task's home (a bind that outlives each container)
WORKSPACE = "/workspace"
FLEET_DIR = "/fleet"
PROMPT_IN_CONTAINER = f"{FLEET_DIR}/prompt.txt"
SPEC_IN_CONTAINER = f"{FLEET_DIR}/launch.json"
LAUNCHER_DIR = "/opt/fleet-launcher"
LAUNCHER_FILES = ("launcher.py", "agent_streams.py", "egress_forward.py")  # stdlib only
# A profile that runs one of our own modules ({python} -m ..., the demo agent) runs it with the
# image's python3 from these files, bound read-only: stdlib-only modules and their packages.
PRODUCT_DIR = "/opt/fleet-product"
PRODUCT_MODULES = frozenset({"fleet_tui.infra.demo_agent"})
LAUNCHER_ENTRY = ["python3", "-I", "-S", f"{LAUNCHER_DIR}/launcher.py", SPEC_IN_CONTAINER]
# Fixed script: the agent's argv arrives as "$@", so no user text is ever parsed by sh.
STDIN_WRAPPER = ["/bin/sh", "-c", f'exec "$@" < {PROMPT_IN_CONTAINER}', "fleet-agent"]
TASK_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,100}\Z")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
ALIVE_STATES = frozenset({"running", "paused", "restarting"})
EXITED_RE = re.compile(r"^Exited \((-?\d+)\)")
OOM_EXIT = 137
LOG_TS_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z ")

ClientFactory = Callable[[], Any]


class DockerRuntime:
    """Runtime protocol implementation for containers (kind = RuntimeKind.DOCKER)."""

    kind = RuntimeKind.DOCKER

    def __init__(
        self,
        image: str,
        *,
        log_dir: Path,
        memory: str = "2g",
        cpus: float = 2.0,
        pids_limit: int = 256,
        network: str = "none",
        user: str = "1000:1000",
        stop_grace_s: int = 30,
        extra_mounts: Sequence[tuple[str, str, str]] = (),
        seccomp_profile: Path | None = None,
        client_factory: ClientFactory = docker.from_env,
        tmp_size: str = "512m",
        spawn_timeout_s: float = 60.0,
        images: dict[str, str] | None = None,
        egress: str = "allowlist",
    ) -> None:
        self.image = image
        self.images = dict(images or {})
        self.egress = egress
        self._proxies: dict[str, EgressProxy] = {}
        self.log_dir = Path(log_dir)
        self.memory = memory
        self.cpus = cpus
        self.pids_limit = pids_limit
        self.network = network
        self.user = user
        self.stop_grace_s = stop_grace_s
        self.extra_mounts = [_mount_from_tuple(m) for m in extra_mounts]
        self.seccomp_json = (seccomp_profile or DEFAULT_SECCOMP_PROFILE).read_text()
        self.tmp_size = tmp_size
        self.spawn_timeout_s = spawn_timeout_s
        self._client_factory = client_factory
        self._client: Any = None
        self._client_lock = asyncio.Lock()

    @classmethod
    def from_settings(
        cls, settings: RuntimeSettings, *, log_dir: Path, **overrides: Any
    ) -> DockerRuntime:
        """The runtime as configured in Settings.runtime (overrides win, e.g. extra_mounts)."""
        options: dict[str, Any] = dict(
            log_dir=log_dir,
            memory=settings.docker_memory,
            cpus=settings.docker_cpus,
            pids_limit=settings.docker_pids_limit,
            network=settings.docker_network,
            user=settings.docker_user,
            stop_grace_s=settings.stop_grace_s,
            images=settings.docker_images,
            egress=settings.docker_egress,
            extra_mounts=[tuple(m.split(":")) if m.count(":") == 2 else (*m.split(":"), "ro")
                          for m in settings.docker_mounts],
        )
        options.update(overrides)
        return cls(settings.docker_image, **options)

    # --- engine access --------------------------------------------------------------------

    async def client(self) -> Any:
        """The SDK client, made once (from_env may query the engine's API version)."""
        async with self._client_lock:
            if self._client is None:
                try:
                    self._client = await asyncio.to_thread(self._client_factory)
                except DockerException as exc:
                    raise FleetError(f"docker engine unreachable: {exc}") from None
            return self._client

    async def check_available(self, agent: str | None = None) -> None:
        try:
            client = await self.client()
            await self._call(client.ping)
        except FleetError as exc:
            where = os.environ.get("DOCKER_HOST") or "the default socket"
            raise RuntimeUnavailableError(
                "docker", f"the Docker engine at {where} is unreachable ({exc}); start it, or use "
                          "the tmux runtime") from None
        image = self.image_for(agent)
        try:
            await self._call(client.images.get, image)
        except NotFound:
            raise ImageMissingError("docker", missing_image(image, agent)) from None

    def image_for(self, agent: str | None) -> str:
        return self.images.get(agent or "", self.image)

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except NotFound:
            raise
        except DockerException as exc:
            raise FleetError(f"docker: {exc}") from None

    async def _container(self, task_id: str) -> Any | None:
        client = await self.client()
        try:
            return await self._call(client.containers.get, container_name(task_id))
        except NotFound:
            return None

    # --- spawn ----------------------------------------------------------------------------

    async def spawn(self, launch: AgentLaunch) -> ProcessState:
        """Create and start the task's container. Any failure removes what this call made
        (container, prompt dir, env file) and raises SpawnError(PROCESS_FAILED | TIMEOUT)."""
        secrets = [v for k, v in launch.env.items() if v and not k.startswith("FLEET_")]  # not the task id
        task_dir: Path | None = None
        env_dir: Path | None = None
        work: asyncio.Future[Any] | None = None
        created: list[str] = []  # ids of containers this call made, filled by the thread
        try:
            _validate(launch)
            client = await self.client()
            await self._clear_stale(client, launch.task_id)
            task_dir = self._write_prompt(launch)
            env_dir, env_file = _write_env_file(launch.env)
            user = await asyncio.to_thread(self._user_for, launch)  # may chown a tree
            branch_mounts = await self._link_branch(launch, task_dir, user)
            proxy = await self._start_egress(launch)
            env = _read_env_file(env_file)
            if "GIT_CONFIG_COUNT" not in env:  # the profile's own git configuration wins whole
                env = {**await asyncio.to_thread(host_git_identity, launch.git_common), **env}
            create_kwargs = self._create_kwargs(launch, task_dir, env, user, branch_mounts, proxy)
            work = asyncio.ensure_future(
                asyncio.to_thread(
                    self._create_and_start, client, create_kwargs, env_dir, created
                )
            )
            try:
                container = await asyncio.wait_for(asyncio.shield(work), self.spawn_timeout_s)
            except TimeoutError:
                await asyncio.gather(work, return_exceptions=True)  # let the thread finish
                raise SpawnError(
                    SpawnErrorCode.TIMEOUT,
                    f"container for task {launch.task_id} not started within "
                    f"{self.spawn_timeout_s:g}s",
                ) from None
            state = _state_from_attrs(launch.task_id, container.attrs)
            log.info("spawned container %s for task %s", state.ref[:12], launch.task_id)
            return state
        except BaseException as exc:
            if work is not None:  # wait for the thread: it may still be creating
                await asyncio.gather(work, return_exceptions=True)
            for container_id in created:  # only what this call made is ours to remove
                await self._remove_quietly(container_id)
            if task_dir is not None:
                await settle_branch(task_dir)
                shutil.rmtree(task_dir, ignore_errors=True)
            await self._stop_egress(launch.task_id)
            if isinstance(exc, SpawnError):
                raise SpawnError(exc.code, _redact(exc.detail, secrets)) from None
            if isinstance(exc, (DockerException, FleetError, OSError, ValueError)):
                raise SpawnError(
                    SpawnErrorCode.PROCESS_FAILED,
                    _redact(f"task {launch.task_id}: {exc}", secrets),
                ) from None
            raise
        finally:
            if env_dir is not None:
                shutil.rmtree(env_dir, ignore_errors=True)

    def _create_and_start(
        self, client: Any, kwargs: dict[str, Any], env_dir: Path, created: list[str]
    ) -> Any:
        """Thread body: create, start, then drop the env file at once; inspect for state."""
        container = client.containers.create(**kwargs)
        created.append(container.id)
        try:
            container.start()
        finally:
            shutil.rmtree(env_dir, ignore_errors=True)
        container.reload()
        return container

    async def _clear_stale(self, client: Any, task_id: str) -> None:
        """A retried task reuses its name: remove an exited leftover, refuse a live one."""
        container = await self._container(task_id)
        if container is None:
            return
        if container.attrs.get("State", {}).get("Running"):
            raise SpawnError(
                SpawnErrorCode.PROCESS_FAILED, f"task {task_id} already has a running container"
            )
        await self._call(container.remove, force=True)

    def _write_prompt(self, launch: AgentLaunch) -> Path:
        task_dir = self.log_dir / launch.task_id
        task_dir.mkdir(parents=True, exist_ok=True)
        prompt = task_dir / "prompt.txt"
        prompt.write_text(launch.prompt)
        uid, gid = _numeric_user(self.user)
        if os.geteuid() == 0 and uid is not None:
            # Only the container user may read the prompt.
            os.chown(prompt, uid, gid if gid is not None else -1)
            prompt.chmod(0o400)
        else:
            prompt.chmod(0o644)
        task_dir.chmod(0o755)
        return task_dir

    def _home_dir(self, task_id: str) -> Path:
        return self.log_dir / "homes" / task_id

    def _home(self, task_id: str, user: str) -> Path:
        """The task's HOME, kept across its containers: a resume (an answer, a vanished agent)
        runs a new container, and a CLI keeps its session there (claude's ~/.claude, opencode's
        database). Only the agent's user may use it; the host never reads it."""
        home = self._home_dir(task_id)
        home.mkdir(parents=True, exist_ok=True)
        home.chmod(0o700)
        uid, gid = _numeric_user(user)
        if os.geteuid() == 0 and uid is not None:
            os.chown(home, uid, gid if gid is not None else uid)
        return home

    def _user_for(self, launch: AgentLaunch) -> str:
        return _owner_user(launch) if self.user == "auto" else self.user

    async def _link_branch(self, launch: AgentLaunch, task_dir: Path, user: str) -> list[Mount]:
        """Only the task branch's ref (and its reflog) writable: see infra/ref_spool.py."""
        if launch.git_common is None or launch.git_branch is None:
            return []
        uid, gid = _numeric_user(user)
        owner = (uid, gid if gid is not None else uid) if os.geteuid() == 0 and uid is not None else None
        return await link_branch(task_dir, launch.git_common, launch.git_branch, owner=owner)

    async def _start_egress(self, launch: AgentLaunch) -> EgressProxy | None:
        """The task's allow-list proxy, when it has endpoints and egress is on."""
        await self._stop_egress(launch.task_id)  # a retry's leftover
        if self.egress != "allowlist":
            return None
        endpoints = endpoints_for(launch.egress, launch.env)
        if not endpoints:
            return None
        proxy = EgressProxy(launch.task_id, endpoints)
        self._proxies[launch.task_id] = proxy
        await proxy.start()
        return proxy

    async def _serve_egress_again(self, task_id: str, row: dict[str, Any]) -> None:
        """A live container whose proxy died with its conductor: this conductor serves the
        same allow-list (the container's own label, set at create) on the same socket dir
        (the container's own bind), so the agent's way out comes back."""
        allowed = (row.get("Labels") or {}).get(LABEL_EGRESS)
        source = next((m.get("Source") for m in row.get("Mounts") or []
                       if m.get("Destination") == SOCKET_DIR_IN_CONTAINER), None)
        if self.egress != "allowlist" or not allowed or not source or not Path(source).is_dir():
            return
        served = self._proxies.get(task_id)
        if served is not None:
            if served.dir == Path(source):
                return
            # an earlier container's: another process (a CLI's answer or retry) started this one
            await self._stop_egress(task_id)
        proxy = EgressProxy(task_id, [parse_endpoint(e) for e in allowed.split(",")], Path(source))
        self._proxies[task_id] = proxy
        try:
            await proxy.start()
        except OSError as exc:
            self._proxies.pop(task_id, None)
            log.log(logging.DEBUG if isinstance(exc, ProxyInUse) else logging.WARNING,
                    "not serving the egress of task %s: %s", task_id, exc)
            return
        log.info("serving the egress of task %s again (%s)", task_id, allowed)

    async def aclose(self) -> None:
        """The conductor stops: its proxies stop serving, and their dirs stay for the
        containers, which live on (a restarted conductor serves them again: states())."""
        for task_id in list(self._proxies):
            await self._proxies.pop(task_id).close(keep_dir=True)

    async def _stop_egress(self, task_id: str) -> None:
        proxy = self._proxies.pop(task_id, None)
        if proxy is not None:
            await proxy.close()

    def _create_kwargs(
        self, launch: AgentLaunch, task_dir: Path, env: dict[str, str], user: str,
        branch_mounts: Sequence[Mount] = (), proxy: EgressProxy | None = None,
    ) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        mounts = [
            Mount(WORKSPACE, str(launch.workdir.resolve()), type="bind", read_only=False),
            Mount(FLEET_DIR, str(task_dir.resolve()), type="bind", read_only=True),
            *_git_common_dir_mounts(launch),
            *branch_mounts,
            Mount(HOME_IN_CONTAINER, str(self._home(launch.task_id, user)), type="bind", read_only=False),
            *self.extra_mounts,
        ]
        product = product_module_mounts(launch.argv)
        mounts += product
        if launch.stream or proxy is not None:
            entrypoint, command = LAUNCHER_ENTRY, []
            spec: dict[str, Any] = {
                "argv": bind_prompt_file(list(launch.argv), PROMPT_IN_CONTAINER), "cwd": WORKSPACE,
                "prompt_file": PROMPT_IN_CONTAINER, "prompt_via": launch.prompt_via, "stream": launch.stream,
            }
            here = Path(launcher_module.__file__).resolve().parent
            mounts += [Mount(f"{LAUNCHER_DIR}/{name}", str(here / name), type="bind", read_only=True)
                       for name in LAUNCHER_FILES]
            if proxy is not None:
                forwards, hosts = forwards_for(proxy.allowed_in_order)
                spec["forwards"] = [[f.listen_host, f.endpoint.port, str(f.endpoint)] for f in forwards]
                spec["egress_socket"] = f"{SOCKET_DIR_IN_CONTAINER}/{SOCKET_NAME}"
                mounts.append(Mount(SOCKET_DIR_IN_CONTAINER, str(proxy.dir), type="bind", read_only=True))
                extra["extra_hosts"] = hosts
                if any(f.endpoint.port < 1024 for f in forwards):  # 443 as uid 1000, in its own netns
                    extra["sysctls"] = {"net.ipv4.ip_unprivileged_port_start": "0"}
            _write_spec(task_dir / "launch.json", spec)
        elif launch.prompt_via == "stdin":
            entrypoint = [*STDIN_WRAPPER, launch.argv[0]]
            command = list(launch.argv[1:])
        else:
            argv = bind_prompt_file(list(launch.argv), PROMPT_IN_CONTAINER)
            entrypoint, command = [argv[0]], argv[1:]
        return dict(
            **extra,
            image=self.image_for(launch.agent),
            name=container_name(launch.task_id),
            entrypoint=entrypoint,
            command=command,
            labels={LABEL_FLEET: "true", LABEL_TASK: launch.task_id,
                    **({LABEL_EGRESS: ",".join(map(str, proxy.allowed_in_order))} if proxy else {})},
            environment={"HOME": HOME_IN_CONTAINER, **env,
                         **({"PYTHONPATH": PRODUCT_DIR} if product else {})},
            working_dir=WORKSPACE,
            user=user,
            read_only=True,
            tmpfs={"/tmp": f"rw,nosuid,nodev,size={self.tmp_size}"},
            mounts=mounts,
            mem_limit=self.memory,
            memswap_limit=self.memory,  # no swap beyond the memory limit
            nano_cpus=int(self.cpus * 1e9),
            pids_limit=self.pids_limit,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges:true", f"seccomp={self.seccomp_json}"],
            network_mode=self.network,
            ipc_mode="private",
            init=True,  # PID 1 forwards SIGTERM and reaps the agent's children
            stdin_open=False,
            tty=False,
            log_config=LogConfig(type="json-file", config={"max-size": "50m", "max-file": "3"}),
        )

    async def _remove_quietly(self, container_id: str) -> None:
        try:
            client = await self.client()
            await self._call(client.api.remove_container, container_id, force=True)
        except (NotFound, FleetError):
            pass

    # --- observe --------------------------------------------------------------------------

    async def is_alive(self, task_id: str) -> bool:
        state = await self.exit_status(task_id)
        return bool(state and state.alive)

    async def exit_status(self, task_id: str) -> ProcessState | None:
        """State from inspect (exit code and OOMKilled); None when no container exists."""
        container = await self._container(task_id)
        return None if container is None else _state_from_attrs(task_id, container.attrs)

    async def states(self) -> dict[str, ProcessState]:
        """Every container labelled fleet=true, alive or exited, from one list call. The
        list carries the exit code in its status text; only an exit of 137 is inspected
        further, to tell an OOM kill from a plain SIGKILL."""
        client = await self.client()
        rows = await self._call(
            client.api.containers, all=True, filters={"label": f"{LABEL_FLEET}=true"}
        )
        result: dict[str, ProcessState] = {}
        for row in rows:
            task_id = (row.get("Labels") or {}).get(LABEL_TASK)
            if not task_id:
                continue
            state = _state_from_summary(task_id, row)
            if state.alive:
                await self._serve_egress_again(task_id, row)
            if state.exit_code == OOM_EXIT:
                state = await self.exit_status(task_id) or state
            result[task_id] = state
        return result

    async def list_active(self) -> list[ProcessState]:
        client = await self.client()
        rows = await self._call(
            client.api.containers,
            filters={"label": f"{LABEL_FLEET}=true", "status": "running"},
        )
        return [
            _state_from_summary(row["Labels"][LABEL_TASK], row)
            for row in rows
            if (row.get("Labels") or {}).get(LABEL_TASK)
        ]

    async def tail(self, task_id: str, n: int = 100) -> list[str]:
        container = await self._container(task_id)
        if container is None:
            return []
        try:
            raw = await self._call(container.logs, tail=max(n, 0))
        except NotFound:
            return []
        return raw.decode(errors="replace").splitlines()[-n:] if n > 0 else []

    async def read_from(self, task_id: str, cursor: int | None, max_lines: int) -> tuple[list[str], int]:
        """Up to max_lines log entries after `cursor` (None: the last max_lines) and the
        cursor just after them; see LogCursor for what the number holds."""
        container = await self._container(task_id)
        if container is None or max_lines <= 0:
            return [], cursor or 0
        try:
            page: tuple[list[str], int] = await self._call(_read_entries, container, cursor, max_lines)
        except NotFound:
            return [], cursor or 0
        return page

    async def last_output_at(self, task_id: str) -> float | None:
        """Epoch seconds of the newest log line (the engine's own timestamp), or None."""
        container = await self._container(task_id)
        if container is None:
            return None
        try:
            raw = await self._call(container.logs, tail=1, timestamps=True)
        except NotFound:
            return None
        return _log_timestamp(raw.decode(errors="replace"))

    async def stream(self, task_id: str, *, after: int | None = None) -> AsyncIterator[str]:
        """Live output lines (stdout and stderr) until the container exits or the consumer
        stops, from the start or after a read_from cursor; a reader thread feeds a queue,
        and closing the stream ends the thread."""
        container = await self._container(task_id)
        if container is None:
            return
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[list[str] | None] = asyncio.Queue()
        start = LogCursor.unpack(after) if after else None
        since = {"since": start.ms / 1000} if start and start.ms else {}
        try:
            logs = await self._call(container.logs, stream=True, follow=True, timestamps=start is not None,
                                    **since)
        except NotFound:
            return
        batches = _chunk_lines(logs) if start is None else ([e.text] for e in _after_cursor(logs, start))
        reader = threading.Thread(
            target=_pump, args=(batches, loop, queue), name=f"fleet-logs-{task_id}", daemon=True,
        )
        reader.start()
        try:
            while (batch := await queue.get()) is not None:
                for line in batch:
                    yield line
        finally:
            await asyncio.to_thread(logs.close)

    # --- act ------------------------------------------------------------------------------

    async def kill(self, task_id: str) -> None:
        """Stop with stop_grace_s grace (SIGTERM, then SIGKILL), then remove the container
        and the task's prompt dir. Idempotent."""
        container = await self._container(task_id)
        if container is not None:
            try:
                await self._call(container.stop, timeout=self.stop_grace_s)
                await self._call(container.remove, force=True)
            except NotFound:
                pass
        await self._stop_egress(task_id)
        await settle_branch(self.log_dir / task_id)
        shutil.rmtree(self.log_dir / task_id, ignore_errors=True)

    async def release(self, task_id: str) -> None:
        """An exited container stays (its logs are the task's output) until the task is
        deleted or swept; its egress proxy, served for nobody, stops."""
        if not await self.is_alive(task_id):
            await self._stop_egress(task_id)

    async def forget(self, task_id: str) -> None:
        await self.kill(task_id)  # the container's log goes with the container
        await asyncio.to_thread(shutil.rmtree, self._home_dir(task_id), True)

    async def send_input(self, task_id: str, text: str) -> None:
        """A graceful no-op: the agent's stdin is its prompt file, so a container has no
        interactive input channel (agents are run headless). Logged without the text."""
        log.warning("docker runtime cannot send input to task %s; ignored", task_id)


# --- helpers ------------------------------------------------------------------------------

def missing_image(image: str, agent: str | None) -> str:
    """One line: which image is missing, for whom, and the command that makes it."""
    if agent in IMAGE_AGENTS and image == image_tag(agent):
        how = f"build it with `fleet-tui image build --agent {agent}`"
    elif image == f"{IMAGE_REPOSITORY}:latest":
        how = "build it with `fleet-tui image build` (every agent)"
    else:
        how = "build or load it on this engine, or name another in runtime.docker_images"
    return f"the Docker engine has no image {image} (agent {agent or 'default'}); {how}, or use the tmux runtime"


def container_name(task_id: str) -> str:
    return f"fleet-{task_id}"


def _validate(launch: AgentLaunch) -> None:
    if not TASK_ID_RE.match(launch.task_id):
        raise SpawnError(SpawnErrorCode.PROCESS_FAILED, "task id is not a valid container name")
    if not launch.argv:
        raise SpawnError(SpawnErrorCode.PROCESS_FAILED, "empty agent command")
    if not launch.workdir.is_dir():
        raise SpawnError(
            SpawnErrorCode.PROCESS_FAILED, f"worktree {launch.workdir} is not a directory"
        )
    for name, value in launch.env.items():
        # Names only in messages: values are secrets.
        if not ENV_NAME_RE.match(name):
            raise SpawnError(SpawnErrorCode.PROCESS_FAILED, f"bad environment name {name!r}")
        if "\n" in value or "\x00" in value:
            raise SpawnError(
                SpawnErrorCode.PROCESS_FAILED, f"environment value of {name} has a newline"
            )


def _write_env_file(env: dict[str, str]) -> tuple[Path, Path]:
    """The secrets, one KEY=value a line, in a fresh 0700 dir, file mode 0600."""
    env_dir = Path(tempfile.mkdtemp(prefix="fleet-env-"))
    env_file = env_dir / "agent.env"
    fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.writelines(f"{name}={value}\n" for name, value in env.items())
    return env_dir, env_file


def _write_spec(path: Path, spec: dict[str, Any]) -> None:
    """The launcher's spec: argv and where things are, never a secret; readable by the
    container's user through the read-only /fleet bind."""
    path.write_text(json.dumps(spec))
    path.chmod(0o644)


def _read_env_file(env_file: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in env_file.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep:
            env[name] = value
    return env


def _numeric_user(user: str) -> tuple[int | None, int | None]:
    uid, _, gid = user.partition(":")
    return (
        int(uid) if uid.isdigit() else None,
        int(gid) if gid.isdigit() else None,
    )


def host_git_identity(git_common: Path | None) -> dict[str, str]:
    """The author git on the host would record in this repository (the user's own config), as
    git configuration in the environment: in a container there is no ~/.gitconfig, and an
    agent's commits (and aider's start-up check of user.name) need one. Read from the
    repository the task record names (its common dir, which no agent can write), never
    through the worktree; empty when the host has none, as a tmux agent's git would."""
    where = ["--git-dir", str(git_common)] if git_common is not None else []
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    found = {}
    for key in ("user.name", "user.email"):
        try:
            done = subprocess.run(["git", *where, "config", "--get", key], capture_output=True, text=True,
                                  timeout=10, cwd="/", env=env)
        except (OSError, subprocess.TimeoutExpired):
            return {}
        if done.returncode == 0 and done.stdout.strip():
            found[key] = done.stdout.strip()
    return config_env(found) if found else {}


def _mount_from_tuple(spec: tuple[str, str, str]) -> Mount:
    source, target, mode = spec
    if mode not in ("ro", "rw"):
        raise ValueError(f"extra mount {target}: mode must be 'ro' or 'rw'")
    return Mount(target, source, type="bind", read_only=mode == "ro")


# what a commit writes in the repository's common git dir besides the task branch's ref and
# reflog (infra/ref_spool.py); the rest of it (config, hooks, info, packed-refs, every
# other ref) is what the user's own git reads and runs, so it stays read-only
GIT_WRITABLE = ("objects",)
# inside objects/, alternates would have the conductor's git read any repository on the host
GIT_READ_ONLY_INSIDE = ("objects/info",)


def product_module_mounts(argv: Sequence[str]) -> list[Mount]:
    """For `python3 -m <one of PRODUCT_MODULES>`: the module's file and its packages'
    __init__ files, read-only under PRODUCT_DIR; nothing for any other agent."""
    if len(argv) < 3 or argv[0] != CONTAINER_PYTHON or argv[1] != "-m" or argv[2] not in PRODUCT_MODULES:
        return []
    root = Path(fleet_tui.__file__).resolve().parent.parent
    parts = argv[2].split(".")
    files = [f"{'/'.join(parts[:n])}/__init__.py" for n in range(1, len(parts))] + [f"{'/'.join(parts)}.py"]
    return [Mount(f"{PRODUCT_DIR}/{name}", str(root / name), type="bind", read_only=True) for name in files]


def _git_common_dir_mounts(launch: AgentLaunch) -> list[Mount]:
    """The repository's common git dir, bound at the same path so that git works (and
    commits) inside the container, read-only except objects (not objects/info) and the
    worktree's own admin dir (the task branch's ref: infra/ref_spool.py). Both dirs come from the task record
    (launch.git_common, launch.git_admin), never from the worktree's `.git` file, which
    the agent may have rewritten."""
    common, admin = launch.git_common, launch.git_admin
    if common is None or admin is None:
        return []
    mounts = [Mount(str(common), str(common), type="bind", read_only=True)]
    for name in GIT_WRITABLE:
        path = common / name
        path.mkdir(exist_ok=True)  # a repository without reflogs yet would have git create it
        mounts.append(Mount(str(path), str(path), type="bind", read_only=False))
    for name in GIT_READ_ONLY_INSIDE:
        path = common / name
        path.mkdir(parents=True, exist_ok=True)
        mounts.append(Mount(str(path), str(path), type="bind", read_only=True))
    mounts.append(Mount(str(admin), str(admin), type="bind", read_only=False))
    return mounts


def _owner_user(launch: AgentLaunch) -> str:
    """docker_user = "auto": run as the repository's owner (never root), handing the
    worktree the conductor made (and its git admin dir) to that user."""
    workdir, common = launch.workdir, launch.git_common
    info = (common or workdir).stat()
    if info.st_uid == 0:
        raise SpawnError(SpawnErrorCode.PROCESS_FAILED,
                         "runtime.docker_user is auto but the repository is owned by root; agents never "
                         "run as root: set runtime.docker_user or use a repository of a normal user")
    if os.geteuid() == 0:
        # what the conductor (root) made: the worktree, and in the user's git dir its
        # admin dir, branch refs, logs and any objects, all handed back to the owner
        for top in [workdir, *([common] if common else [])]:
            _chown_root_owned(top, info.st_uid, info.st_gid)
    return f"{info.st_uid}:{info.st_gid}"


def _chown_root_owned(top: Path, uid: int, gid: int) -> None:
    for root, names, files in os.walk(top):
        for name in (root, *(os.path.join(root, n) for n in names + files)):
            if os.lstat(name).st_uid == 0:
                os.lchown(name, uid, gid)


def _state_from_attrs(task_id: str, attrs: dict[str, Any]) -> ProcessState:
    state = attrs.get("State", {})
    alive = state.get("Status") in ALIVE_STATES
    return ProcessState(
        task_id=task_id,
        ref=attrs.get("Id", ""),
        alive=alive,
        exit_code=None if alive or state.get("Status") == "created" else state.get("ExitCode"),
        oom_killed=bool(state.get("OOMKilled")),
    )


def _state_from_summary(task_id: str, row: dict[str, Any]) -> ProcessState:
    alive = row.get("State") in ALIVE_STATES
    match = EXITED_RE.match(row.get("Status") or "")
    return ProcessState(
        task_id=task_id,
        ref=row.get("Id", ""),
        alive=alive,
        exit_code=int(match.group(1)) if match and not alive else None,
    )


def _chunk_lines(logs: Iterable[bytes]) -> Iterator[list[str]]:
    """The engine's frames as batches of lines (a line may span frames)."""
    pending = b""
    for chunk in logs:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        if lines:
            yield [line.decode(errors="replace") for line in lines]
    if pending:
        yield [pending.decode(errors="replace")]


def _pump(batches: Iterable[list[str]], loop: asyncio.AbstractEventLoop,
          queue: asyncio.Queue[list[str] | None]) -> None:
    """Thread body: hand each batch of lines to the loop, then None."""
    try:
        for batch in batches:
            loop.call_soon_threadsafe(queue.put_nowait, batch)
    except Exception:  # a closed socket ends the stream like EOF
        pass
    finally:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, None)
        except RuntimeError:  # the loop is already closed
            pass


CURSOR_SLOTS = 1_000_000  # entries per millisecond: far beyond any engine


class LogCursor(NamedTuple):
    """Where a reader stands in a container's log: the millisecond of the last entry it
    got and how many entries of that millisecond it got. Not the timestamp alone: many
    entries share a millisecond (a long line's 16 KiB parts even share one stamp), so a
    read asks `since` (inclusive) that millisecond and skips those entries; none is lost
    or repeated. The count also covers the stdout and stderr copiers stamping a line
    before the other's but writing it after, within one millisecond (across a millisecond
    boundary such a line could be missed). Packed into one int, so it travels in a
    command's JSON as a tmux byte offset does; 0 is the log's start."""

    ms: int
    seen: int

    def pack(self) -> int:
        return self.ms * CURSOR_SLOTS + self.seen

    @classmethod
    def unpack(cls, cursor: int) -> LogCursor:
        return cls(*divmod(cursor, CURSOR_SLOTS))


class _Entry(NamedTuple):
    ms: int
    stamp: bytes  # the engine's nanosecond stamp: with the text, tells one entry from another
    text: str


def _read_entries(container: Any, cursor: int | None, max_lines: int) -> tuple[list[str], int]:
    """Thread body of read_from."""
    if cursor is None:
        with closing(_entries(container, LogCursor(0, 0), tail=max_lines)) as stream:
            entries = list(stream)
        after = _cursor_after_tail(container, entries) if entries else LogCursor(0, 0)
    else:
        start = LogCursor.unpack(cursor)
        since = {"since": start.ms / 1000} if start.ms else {}  # seconds, exact to the millisecond
        with closing(_entries(container, start, **since)) as stream:
            entries = list(islice(stream, max_lines))  # closed as soon as enough came
        after = _cursor_after(start, entries)
    return [entry.text for entry in entries], after.pack()


def _entries(container: Any, start: LogCursor, **where: Any) -> Generator[_Entry, None, None]:
    """The log's entries after `start`, streamed one frame each (so an entry without a
    newline stays one entry); closing the iterator closes the engine's stream."""
    with closing(container.logs(stream=True, follow=False, timestamps=True, **where)) as logs:
        yield from _after_cursor(logs, start)


def _after_cursor(frames: Iterable[bytes], start: LogCursor) -> Iterator[_Entry]:
    """The entries of timestamped frames that come after `start`."""
    to_skip = start.seen
    previous_ms = start.ms
    for frame in frames:
        entry = _log_entry(frame, previous_ms)
        previous_ms = entry.ms
        if entry.ms < start.ms:
            continue
        if entry.ms == start.ms and to_skip > 0:
            to_skip -= 1
            continue
        yield entry


def _cursor_after(start: LogCursor, entries: list[_Entry]) -> LogCursor:
    if not entries:
        return start
    last = entries[-1].ms
    seen = sum(1 for entry in entries if entry.ms == last)
    return LogCursor(last, seen + (start.seen if last == start.ms else 0))


def _cursor_after_tail(container: Any, tail: list[_Entry]) -> LogCursor:
    """A tail that starts in an earlier millisecond holds all of its last one; a tail
    inside one millisecond may not: count that millisecond's entries up to its last."""
    last = tail[-1]
    if tail[0].ms != last.ms:
        return _cursor_after(LogCursor(0, 0), tail)
    with closing(_entries(container, LogCursor(last.ms, 0), since=last.ms / 1000)) as entries:
        for seen, entry in enumerate(entries, 1):
            if entry == last:
                return LogCursor(last.ms, seen)
    return _cursor_after(LogCursor(0, 0), tail)


def _log_entry(frame: bytes, default_ms: int) -> _Entry:
    """b'2026-01-02T03:04:05.123456789Z text\\n' -> (epoch milliseconds, stamp, 'text')."""
    frame = frame.removesuffix(b"\n")
    stamp, _, raw = frame.partition(b" ")
    match = LOG_TS_RE.match(stamp.decode("ascii", errors="replace") + " ")
    if match is None:  # not stamped (never seen): keep the text, with the previous entry
        return _Entry(default_ms, b"", decode_line(frame))
    seconds = int(datetime.fromisoformat(f"{match.group(1)}+00:00").timestamp())
    return _Entry(seconds * 1000 + int((match.group(2) or "0")[:3].ljust(3, "0")), stamp, decode_line(raw))


def _log_timestamp(line: str) -> float | None:
    """'2026-01-02T03:04:05.123456789Z text' -> epoch seconds (nanoseconds cut to micro)."""
    match = LOG_TS_RE.match(line)
    if not match:
        return None
    stamp = f"{match.group(1)}.{(match.group(2) or '0')[:6]}+00:00"
    return datetime.fromisoformat(stamp).timestamp()


def _redact(text: str, secrets: Sequence[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
