"""Local runtime: each agent in a tmux session ``fleet-<task id>`` on a private socket.

Choices:
- A private socket (``tmux -L <name>``) so the user's own sessions are never touched; the
  server starts with ``-f /dev/null`` and a scrubbed environment, so neither the user's
  tmux.conf nor the conductor's secrets leak into panes.
- No shell ever sees user text. tmux exec's a multi-argument command directly, and that
  command is the launcher with a 0600 JSON file (argv, cwd, prompt file, secret env) that
  it deletes on reading (fleet_tui.infra.launcher). The prompt goes through stdin or a file.
- Spawn is ONE tmux invocation (new-session ; set remain-on-exit ; pipe-pane): the server
  runs the chain before it reads the pane, so no early output or fast exit is missed, and
  spawn costs one process, close to a bare `tmux new-session`.
- That invocation and the launcher's start overlap the making of the worktree (prestart):
  the launcher waits on a FIFO the conductor holds open, named after the task under
  .run/.starting, and starts the agent only once its spec is there (see launcher.py). The
  FIFO is the mark of a session whose agent has not started: states() reports it not
  alive, so no monitor adopts it as an agent; the conductor removes it as it says go. If
  the conductor dies or gives up, its end of the FIFO closes and the launcher exits.
- Hot paths (spawn, states over 500 tasks in one list-panes -a) call the tmux binary
  through fleet_tui.infra.proc (async, argv lists, timeouts). libtmux's new_session joins
  the command into one string for `sh -c` and costs an extra `tmux -V`, so it is used for
  the rarer management calls (kill, send_input, kill_server), wrapped in asyncio.to_thread.
- Output: pipe-pane appends to a per-task log (path shlex-quoted; built from a validated
  task id). stream() tails that file woken by inotify, never by polling the pane; one
  shared list-panes every few seconds (only while streams are open) notices exits.
  read_from() reads it by byte offset, for followers elsewhere (an observer's commands).
"""

from __future__ import annotations

import asyncio
import marshal
import os
import shlex
import shutil
import signal
import sys
import time
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path
from collections.abc import AsyncIterator, Callable

import libtmux

from fleet_tui.domain.errors import RuntimeUnavailableError, SpawnError, SpawnErrorCode, ValidationFailed
from fleet_tui.domain.models import RuntimeKind
from fleet_tui.infra.agents import bind_prompt_file
from fleet_tui.infra import launcher as launcher_module
from fleet_tui.infra.filetail import (
    decode_line,
    file_watcher,
    read_last_complete_lines,
    read_last_lines,
    read_lines_after,
)
from fleet_tui.infra.proc import ProcTimeout, run
from fleet_tui.infra.protocols import AgentLaunch, ProcessState
from fleet_tui.infra.worktree import validate_task_id

SESSION_PREFIX = "fleet-"
# Variables a pane may inherit from the conductor; everything else (API keys above all)
# reaches an agent only through the secrets provider.
SAFE_ENV = ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "TERM", "TZ", "TMPDIR")
EXIT_FILE = launcher_module.EXIT_FILE
STARTING_DIR = ".starting"  # under the run dir: one FIFO per session whose launcher waits
GO = b"1"
SERVER_GONE = "server exited unexpectedly"
# The launcher needs only the standard library: run its file with -I -S, skipping the
# site-packages scan, which is most of a Python start (it is on every spawn's path).
LAUNCHER = (sys.executable, "-I", "-S", str(Path(launcher_module.__file__)))
_STATE_FORMAT = "#{session_name}\t#{pane_dead}\t#{pane_dead_status}\t#{pane_dead_signal}\t#{pane_pid}"


def session_name(task_id: str) -> str:
    return SESSION_PREFIX + validate_task_id(task_id)


def safe_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in SAFE_ENV or k.startswith("LC_")}
    env.setdefault("TERM", "xterm-256color")
    return env


def _tmux_arg(text: str) -> str:
    """tmux reads an argument ending in ';' as a command separator; escape it."""
    return text[:-1] + "\\;" if text.endswith(";") else text


class _Waiter:
    """One open stream: woken by file changes and by the liveness poll."""

    __slots__ = ("event", "dead")

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.dead = False


@dataclass
class EarlyStart:
    """A session opened ahead of its launch (TmuxRuntime.prestart): `opened` ends once tmux
    has started it, its launcher waiting on `fifo`, whose write end this process holds."""

    task_id: str
    workdir: Path
    log: Path
    spec_path: Path
    fifo: Path
    first_start: bool
    opened: asyncio.Task[None] | None = None
    fd: int | None = None
    delivered: bool = False
    gone: bool = False  # let go: no launch will come

    def let_go(self) -> None:
        """Close our end: a launcher still waiting sees its end and exits without starting
        anything (a spawn that stopped, or no longer ours); a session not yet opened is not
        opened. Idempotent."""
        self.gone = True
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class TmuxRuntime:
    kind = RuntimeKind.TMUX

    def __init__(
        self,
        socket_name: str,
        log_dir: Path,
        *,
        tmux_bin: str = "tmux",
        liveness_interval_s: float = 2.0,
        poll_interval_s: float = 1.0,
        kill_grace_s: float = 2.0,
        command_timeout_s: float = 15.0,
    ) -> None:
        self.socket_name = socket_name
        self.log_dir = Path(log_dir).resolve()
        self.run_dir = self.log_dir / ".run"
        self.tmux_bin = tmux_bin
        self.liveness_interval_s = liveness_interval_s
        self.poll_interval_s = poll_interval_s  # only where inotify is unavailable
        self.kill_grace_s = kill_grace_s
        self.command_timeout_s = command_timeout_s
        self._streams: dict[str, set[_Waiter]] = {}
        self._liveness_task: asyncio.Task[None] | None = None

    # --- plumbing ------------------------------------------------------------------------

    def log_path(self, task_id: str) -> Path:
        return self.log_dir / f"{validate_task_id(task_id)}.log"

    def _task_run_dir(self, task_id: str) -> Path:
        return self.run_dir / validate_task_id(task_id)

    def _start_fifo(self, task_id: str) -> Path:
        return self.run_dir / STARTING_DIR / validate_task_id(task_id)

    def _starting(self) -> set[str]:
        """Tasks whose session's launcher waits for its spec (their FIFO exists)."""
        try:
            return set(os.listdir(self.run_dir / STARTING_DIR))
        except FileNotFoundError:
            return set()

    async def _tmux(self, *args: str) -> tuple[int, str, str]:
        result = await run([self.tmux_bin, "-L", self.socket_name, "-f", "/dev/null", *args],
                           timeout_s=self.command_timeout_s, env=safe_env())
        return result.returncode, result.stdout, result.stderr

    def _server(self) -> libtmux.Server:
        return libtmux.Server(socket_name=self.socket_name, tmux_bin=shutil.which(self.tmux_bin))

    # --- spawn ---------------------------------------------------------------------------

    async def check_available(self, agent: str | None = None) -> None:
        if shutil.which(self.tmux_bin) is None:
            raise RuntimeUnavailableError("tmux", f"{self.tmux_bin} is not installed; install tmux, or use "
                                                  "the docker runtime")

    def prestart(self, task_id: str, workdir: Path, *, first_start: bool) -> EarlyStart:
        """Open the task's session now, its launcher waiting for spawn(launch) with
        launch.early set to what this returns: tmux and the launcher's start overlap the
        making of the worktree. Its `opened` raises SpawnError as spawn would; abandon() or
        let_go() when the launch never comes."""
        task_dir = self._task_run_dir(task_id)
        early = EarlyStart(task_id=task_id, workdir=Path(workdir), log=self.log_path(task_id),
                           spec_path=task_dir / f"launch-{uuid.uuid4().hex}.marshal",
                           fifo=self._start_fifo(task_id), first_start=first_start)
        early.opened = asyncio.get_running_loop().create_task(self._open_early(early), name=f"session-{task_id}")
        return early

    async def _open_early(self, early: EarlyStart) -> None:
        await self._clear_previous(early.task_id, early.first_start)
        if early.gone:
            return
        try:
            task_dir = self._task_run_dir(early.task_id)  # where a launcher given nothing records so
            task_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(task_dir, 0o700)
            early.fifo.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            early.fifo.unlink(missing_ok=True)  # an earlier attempt's, left by a conductor that died
            os.mkfifo(early.fifo, 0o600)
            # read-write: opening never blocks, and the launcher's read waits while we hold it
            early.fd = os.open(early.fifo, os.O_RDWR | os.O_NONBLOCK)
            early.log.parent.mkdir(parents=True, exist_ok=True)
            _write_private(early.log, b"")  # a fresh log per attempt; pipe-pane appends to it
        except OSError as exc:
            early.let_go()
            early.fifo.unlink(missing_ok=True)
            raise SpawnError(SpawnErrorCode.PROCESS_FAILED, f"cannot prepare the session: {exc.strerror}") from None
        try:
            await self._new_session(early.task_id, early.workdir, early.log,
                                    [str(early.spec_path), str(early.fifo)], early=early)
        except asyncio.CancelledError:  # given up (abandon, a cancelled spawn): a session made anyway exits
            early.fifo.unlink(missing_ok=True)
            early.let_go()
            raise

    async def abandon(self, early: EarlyStart) -> None:
        """Undo prestart (a spawn that failed before its launch): the waiting launcher is
        told to exit and the session goes."""
        if early.opened is not None and not early.opened.done():
            early.opened.cancel()
        if early.opened is not None:
            await asyncio.gather(early.opened, return_exceptions=True)
        if early.delivered:
            return  # the agent's: undone as a process, by kill()
        early.fifo.unlink(missing_ok=True)
        early.let_go()
        await self._undo_spawn(early.task_id)

    async def spawn(self, launch: AgentLaunch) -> ProcessState:
        if isinstance(launch.early, EarlyStart):
            return await self._deliver(launch, launch.early)
        name = session_name(launch.task_id)
        if not Path(launch.workdir).is_dir():
            raise SpawnError(SpawnErrorCode.PROCESS_FAILED, f"workdir is not a directory: {launch.workdir}")
        await self._clear_previous(launch.task_id, launch.first_start)
        self._start_fifo(launch.task_id).unlink(missing_ok=True)  # no mark of waiting on this session

        task_dir = self._task_run_dir(launch.task_id)
        log = launch.log_path or self.log_path(launch.task_id)
        try:
            # three small local files: written inline (a hop to a thread costs more than the writes)
            spec_path = self._write_launch_files(launch, task_dir, log)
        except OSError as exc:
            shutil.rmtree(task_dir, ignore_errors=True)
            raise SpawnError(SpawnErrorCode.PROCESS_FAILED, f"cannot write launch files: {exc.strerror}") from None

        await self._new_session(launch.task_id, launch.workdir, log, [str(spec_path)])
        return ProcessState(task_id=launch.task_id, ref=name, alive=True)

    async def _clear_previous(self, task_id: str, first_start: bool) -> None:
        """A dead pane kept by remain-on-exit from an earlier attempt goes; a live one refuses."""
        try:  # a first start skips the look (a tmux call): no session can have the new task's name
            previous = None if first_start else await self.exit_status(task_id)
        except (OSError, ProcTimeout) as exc:
            raise SpawnError(SpawnErrorCode.PROCESS_FAILED, f"cannot run tmux: {exc}") from None
        if previous is not None and previous.alive:
            raise SpawnError(SpawnErrorCode.PROCESS_FAILED, f"session {previous.ref} is already running")
        if previous is not None:
            await self.kill(task_id)

    async def _new_session(self, task_id: str, workdir: Path, log: Path, launcher_args: list[str],
                           early: EarlyStart | None = None) -> None:
        name = session_name(task_id)
        target = f"={name}:"
        try:
            for _ in range(2):
                code, _out, err = await self._tmux(
                    "new-session", "-d", "-s", name, "-c", str(workdir), "-x", "200", "-y", "50",
                    *LAUNCHER, *launcher_args, ";",
                    "set-option", "-w", "-t", target, "remain-on-exit", "on", ";",
                    "pipe-pane", "-t", target, "-o", f"cat >> {shlex.quote(str(log))}",
                )
                # the server was on its way out (its last session had just been killed, e.g. a
                # retry's previous pane) and took nothing: the next call starts a new one
                if code == 0 or SERVER_GONE not in err:
                    break
        except ProcTimeout:
            await self._undo_spawn(task_id, early)
            raise SpawnError(SpawnErrorCode.TIMEOUT, f"tmux did not start {name} in time") from None
        except OSError as exc:
            await self._undo_spawn(task_id, early, session=False)
            raise SpawnError(SpawnErrorCode.PROCESS_FAILED, f"cannot run tmux: {exc.strerror}") from None
        if code != 0:
            await self._undo_spawn(task_id, early)
            raise SpawnError(SpawnErrorCode.PROCESS_FAILED, f"tmux refused {name}: {err.strip()[:300]}")

    async def _deliver(self, launch: AgentLaunch, early: EarlyStart) -> ProcessState:
        """The launch a prestarted session waits for: its files, then go."""
        assert early.opened is not None and early.task_id == launch.task_id, early
        await early.opened  # its SpawnError, if tmux did not start it
        if early.gone:
            raise SpawnError(SpawnErrorCode.PROCESS_FAILED, f"session {session_name(early.task_id)} was given up")
        if not Path(launch.workdir).is_dir():
            raise SpawnError(SpawnErrorCode.PROCESS_FAILED, f"workdir is not a directory: {launch.workdir}")
        task_dir = self._task_run_dir(launch.task_id)
        try:
            staged = self._write_launch_files(launch, task_dir, None, early.spec_path.with_suffix(".tmp"))
            os.replace(staged, early.spec_path)  # whole or absent when the launcher looks
            early.fifo.unlink(missing_ok=True)  # no longer waiting, from now on: before go
            if early.fd is not None:
                os.write(early.fd, GO)
        except OSError as exc:
            raise SpawnError(SpawnErrorCode.PROCESS_FAILED, f"cannot write launch files: {exc.strerror}") from None
        finally:
            early.let_go()
        early.delivered = True
        return ProcessState(task_id=launch.task_id, ref=session_name(launch.task_id), alive=True)

    @staticmethod
    def _write_launch_files(launch: AgentLaunch, task_dir: Path, log: Path | None,
                            spec_path: Path | None = None) -> Path:
        task_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(task_dir, 0o700)
        prompt_path = task_dir / "prompt.txt"
        _write_private(prompt_path, launch.prompt.encode("utf-8"))
        spec = {
            "argv": bind_prompt_file(list(launch.argv), prompt_path),
            "cwd": str(launch.workdir),
            "prompt_file": str(prompt_path),
            "prompt_via": launch.prompt_via,
            "env": dict(launch.env),
            "exit_file": str(task_dir / EXIT_FILE),
            "stream": launch.stream,
        }
        # read by this interpreter: see launcher
        spec_path = spec_path or task_dir / f"launch-{uuid.uuid4().hex}.marshal"
        _write_private(spec_path, marshal.dumps(spec))
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            _write_private(log, b"")  # a fresh log per attempt; pipe-pane appends to it
        return spec_path

    async def _undo_spawn(self, task_id: str, early: EarlyStart | None = None, *, session: bool = True) -> None:
        if early is not None:
            early.fifo.unlink(missing_ok=True)
            early.let_go()
        if session:
            await self._tmux("kill-session", "-t", f"={session_name(task_id)}")
        await asyncio.to_thread(shutil.rmtree, self._task_run_dir(task_id), True)

    # --- state ---------------------------------------------------------------------------

    async def states(self) -> dict[str, ProcessState]:
        """Every fleet session, alive or exited, from one list-panes call."""
        try:
            code, out, _err = await self._tmux("list-panes", "-a", "-F", _STATE_FORMAT)
        except ProcTimeout:
            raise
        if code != 0:  # no server running: no sessions
            return {}
        return _parse_states(out, self._recorded_exit, self._starting())

    def _recorded_exit(self, task_id: str) -> int | None:
        """The status the launcher wrote before the pane died (see launcher.py)."""
        try:
            return int((self._task_run_dir(task_id) / EXIT_FILE).read_text())
        except (FileNotFoundError, ValueError):
            return None

    async def exit_status(self, task_id: str) -> ProcessState | None:
        name = session_name(task_id)
        code, out, _err = await self._tmux("list-panes", "-t", f"={name}:", "-F", _STATE_FORMAT)
        if code != 0:
            return None
        starting = {task_id} if self._start_fifo(task_id).exists() else set()
        return _parse_states(out, self._recorded_exit, starting).get(task_id)

    async def is_alive(self, task_id: str) -> bool:
        state = await self.exit_status(task_id)
        return bool(state and state.alive)

    async def list_active(self) -> list[ProcessState]:
        return [s for s in (await self.states()).values() if s.alive]

    # --- control ------------------------------------------------------------------------

    async def kill(self, task_id: str) -> None:
        """SIGTERM the agent's process group, SIGKILL after a grace, then drop the session."""
        name = session_name(task_id)
        code, out, _err = await self._tmux("list-panes", "-t", f"={name}:", "-F", "#{pane_dead} #{pane_pid}")
        if code == 0 and out.split() and out.split()[0] == "0":
            await _stop_group(int(out.split()[1]), self.kill_grace_s)
        await asyncio.to_thread(self._kill_session_sync, name)
        await asyncio.to_thread(shutil.rmtree, self._task_run_dir(task_id), True)

    async def release(self, task_id: str) -> None:
        """The session of an exited agent (dead pane) goes, and the pipe's `cat` with it;
        the log stays. A live agent's session is left alone."""
        name = session_name(task_id)
        code, out, _err = await self._tmux("list-panes", "-t", f"={name}:", "-F", "#{pane_dead}")
        if code == 0 and out.split()[:1] == ["1"]:
            await self._tmux("kill-session", "-t", f"={name}")

    async def forget(self, task_id: str) -> None:
        await self.kill(task_id)  # the session's pipe-pane `cat` ends with its pane
        self._start_fifo(task_id).unlink(missing_ok=True)
        await asyncio.to_thread(self.log_path(task_id).unlink, True)

    def _kill_session_sync(self, name: str) -> None:
        server = self._server()
        if server.has_session(name, exact=True):
            server.cmd("kill-session", "-t", f"={name}")

    async def send_input(self, task_id: str, text: str) -> None:
        """Type text (literally) and Enter into the agent's pane, e.g. an auto-answer."""
        if len(text) > 4096 or any(unicodedata.category(c) == "Cc" for c in text):
            raise ValidationFailed("input", "must be one line of at most 4096 characters without control characters")
        name = session_name(task_id)
        await asyncio.to_thread(self._send_keys_sync, name, text)

    def _send_keys_sync(self, name: str, text: str) -> None:
        target = f"={name}:"
        keys = ["send-keys", "-t", target, "-l", "--", _tmux_arg(text), ";"] if text else []
        result = self._server().cmd(*keys, "send-keys", "-t", target, "Enter")
        if result.stderr:
            raise SpawnError(SpawnErrorCode.PROCESS_FAILED, f"send-keys to {name}: {result.stderr[0]}")

    async def kill_server(self) -> None:
        """Stop this runtime's private tmux server (tests and uninstall)."""
        def _kill() -> None:
            server = self._server()
            if server.is_alive():
                try:
                    server.kill()
                except libtmux.exc.LibTmuxException as exc:  # it was exiting already: gone, as asked
                    if SERVER_GONE not in str(exc):
                        raise
        await asyncio.to_thread(_kill)

    # --- output ---------------------------------------------------------------------------

    async def last_output_at(self, task_id: str) -> float | None:
        """Epoch seconds of the latest output (the log's mtime), None before any output."""
        try:
            info = await asyncio.to_thread(os.stat, self.log_path(task_id))
        except FileNotFoundError:
            return None
        return info.st_mtime if info.st_size > 0 else None

    async def tail(self, task_id: str, n: int = 100) -> list[str]:
        return await asyncio.to_thread(read_last_lines, self.log_path(task_id), n)

    async def read_from(self, task_id: str, cursor: int | None, max_lines: int) -> tuple[list[str], int]:
        """Up to max_lines complete lines after byte offset `cursor` (None: the last
        max_lines) and the offset just after them. A line still being written waits for its
        newline, unless the agent has exited: then nothing can end it, and it counts."""
        path = self.log_path(task_id)
        if cursor is None:
            lines, end, unterminated = await asyncio.to_thread(read_last_complete_lines, path, max_lines)
        else:
            lines, end, unterminated = await asyncio.to_thread(read_lines_after, path, cursor, max_lines)
        if unterminated and not await self.is_alive(task_id):
            lines.append(decode_line(unterminated))
            end += len(unterminated)
        return (lines[max(len(lines) - max_lines, 0):] if cursor is None else lines), end

    async def stream(self, task_id: str, *, from_start: bool = True, after: int | None = None) -> AsyncIterator[str]:
        """Lines of the agent's output as they are written; ends once the agent has exited
        and its output is drained (or at once when there is no such task). `after`: a
        cursor read_from returned; the lines after it, none twice."""
        path = self.log_path(task_id)
        try:
            handle = open(path, "rb")
        except FileNotFoundError:
            return
        waiter = _Waiter()
        watcher = file_watcher()
        wd = watcher.watch(path, waiter.event)
        self._streams.setdefault(task_id, set()).add(waiter)
        self._ensure_liveness_poll()
        try:
            with handle:
                if after is not None:
                    handle.seek(after)
                elif not from_start:
                    handle.seek(0, os.SEEK_END)
                pending = b""
                while True:
                    waiter.event.clear()
                    chunk = handle.read(262144)
                    if chunk:
                        pending += chunk
                        *lines, pending = pending.split(b"\n")
                        for line in lines:
                            yield decode_line(line)
                        continue
                    if waiter.dead:
                        await asyncio.sleep(0.05)  # let pipe-pane's cat flush its last write
                        pending += handle.read()
                        for line in pending.split(b"\n") if pending else []:
                            if line:
                                yield decode_line(line)
                        return
                    timeout = None if wd is not None else self.poll_interval_s
                    try:
                        await asyncio.wait_for(waiter.event.wait(), timeout)
                    except TimeoutError:
                        pass
        finally:
            watcher.unwatch(wd, waiter.event)
            waiters = self._streams.get(task_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._streams[task_id]

    def _ensure_liveness_poll(self) -> None:
        if self._liveness_task is None or self._liveness_task.done():
            self._liveness_task = asyncio.get_running_loop().create_task(self._liveness_poll())

    async def _liveness_poll(self) -> None:
        """One list-panes for all open streams, only while any is open."""
        while self._streams:
            try:
                states = await self.states()
            except (ProcTimeout, OSError):
                states = None
            if states is not None:
                for task_id, waiters in list(self._streams.items()):
                    state = states.get(task_id)
                    if state is None or not state.alive:
                        for waiter in waiters:
                            waiter.dead = True
                            waiter.event.set()
            await asyncio.sleep(self.liveness_interval_s)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)


def _parse_states(out: str, recorded_exit: Callable[[str], int | None] = lambda _: None,
                  starting: set[str] | frozenset[str] = frozenset()) -> dict[str, ProcessState]:
    """starting: tasks whose launcher waits for its spec: no agent runs there yet (not alive),
    and none has exited (no code)."""
    states: dict[str, ProcessState] = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) != 5 or not parts[0].startswith(SESSION_PREFIX):
            continue
        name, dead, status, sig, pid = parts
        task_id = name[len(SESSION_PREFIX):]
        alive, exit_code = task_id not in starting, None
        if dead == "1":
            # tmux may close the pty a moment before it reaps the process, and with
            # pipe-pane active it sometimes loses the status: the launcher's file has it
            # (written before the launcher lets go of the pty).
            if status:
                exit_code = int(status)
            elif sig:
                exit_code = 128 + int(sig)  # killed by a signal, as a shell reports it
            else:
                exit_code = recorded_exit(task_id)
            # no status anywhere: exited if the process is gone (e.g. SIGKILLed launcher)
            alive = exit_code is None and _pid_exists(pid)
        states[task_id] = ProcessState(task_id=task_id, ref=name, alive=alive, exit_code=exit_code)
    return states


def _pid_exists(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


async def _stop_group(pid: int, grace_s: float) -> None:
    # the pane's process leads its own session and group (tmux setsid()s it)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + (grace_s if sig == signal.SIGTERM else 1.0)
        while time.monotonic() < deadline:
            if not await asyncio.to_thread(group_runs, pid):
                return
            await asyncio.sleep(0.05)


def group_runs(pgid: int) -> bool:
    """Whether a process of the group still runs. An exited process stays a zombie until its
    parent reaps it, and kill(0) still finds it: the launcher's parent is tmux, which is late
    or (3.3a, now and then) never reaps it, so every stop waited its whole grace."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not os.path.isdir("/proc"):
        return True  # no way to tell a zombie here: kill(0) answered
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                state, _ppid, group = stat.read().rsplit(b")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue  # gone meanwhile
        if int(group) == pgid and state != b"Z":
            return True
    return False
