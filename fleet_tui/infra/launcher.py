"""Starts an agent inside a tmux pane without any shell seeing user text.

tmux starts ``python -m fleet_tui.infra.launcher LAUNCH.marshal [START_FIFO]`` (argv exec'd
directly). With START_FIFO the session was opened while the worktree was still being made:
the launcher first waits there for the conductor's go (a byte), or for the conductor's end of
the FIFO to close; either way it then starts the agent if the spec is there, and exits
without starting anything if it is not (the spawn stopped, or its conductor died).
The spec (mode 0600, written by TmuxRuntime; LAUNCH.json in a container) holds the agent's
argv, its working directory, the prompt file, how the prompt is given, the secret environment and where to
record the exit status. The launcher reads it and deletes it at once (secrets live on disk
only between spawn and start), runs the agent as its child with the prompt file on stdin
when the profile reads stdin, forwards termination signals, writes the agent's exit status
to the exit file and exits with the same code.

Why a parent instead of exec: tmux 3.3 sometimes loses a pane's exit status when
pipe-pane is active (pane_dead=1 with no pane_dead_status; seen in about one run in four),
so the runtime reads the status from this file instead. The exit file is written before
the launcher lets go of the pane's terminal, so a dead pane always has it.

When the spec names a ``stream`` (claude, codex, gemini, opencode: CLIs that print JSON
events), the agent's stdout comes through a pipe and the launcher prints a readable
rendering of each event instead, then ``[fleet] ...`` summary lines (usage, session,
outcome) for the conductor: see agent_streams.py.

In a container (infra/docker_runtime.py) the same launcher runs as the agent's parent, from
a read-only bind, with a spec that holds no secrets (they are the container's environment)
on a read-only mount, so it stays; ``forwards`` there are the egress listeners
(egress_forward.py), bound before the agent starts.
"""

from __future__ import annotations

import errno
import marshal
import os
import sys

TYPE_CHECKING = False  # typing is not imported at run time: milliseconds before every agent
if TYPE_CHECKING:
    import signal  # typeshed knows `signal`; `_signal` is its C half, of the same names
    from types import ModuleType
    from typing import NotRequired, TypedDict

    from fleet_tui.infra.agent_streams import StreamReader

    class LaunchSpec(TypedDict):
        """What TmuxRuntime (marshal) and DockerRuntime (JSON) write for the launcher."""

        argv: list[str]
        cwd: str
        prompt_file: str
        prompt_via: str  # stdin | file
        stream: str | None  # the agent's JSON event format, rendered by agent_streams
        env: NotRequired[dict[str, str]]  # the secret environment (host specs only)
        exit_file: NotRequired[str]
        forwards: NotRequired[list[list[str | int]]]  # egress listeners: [host, port, "host:port"]
        egress_socket: NotRequired[str]
else:
    try:  # the C module: `signal` imports enum, a few milliseconds before every agent starts
        import _signal as signal
    except ImportError:  # another Python than CPython
        import signal

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)


def _start_child(spec: LaunchSpec, stdout_fd: int | None = None) -> int:
    pid = os.fork()
    if pid:
        return pid
    try:  # child: becomes the agent
        for sig in FORWARDED:
            signal.signal(sig, signal.SIG_DFL)
        if stdout_fd is not None:
            os.dup2(stdout_fd, 1)
            os.close(stdout_fd)
        os.chdir(spec["cwd"])
        if spec["prompt_via"] == "stdin":
            fd = os.open(spec["prompt_file"], os.O_RDONLY)
            os.dup2(fd, 0)
            os.close(fd)
        # PWD names the directory the agent runs in: opencode takes its project from PWD,
        # not from the process's directory (it edited the conductor's own directory when
        # started with another one's PWD)
        env = {**os.environ, **spec.get("env", {}), "PWD": spec["cwd"]}
        env.pop("TMUX", None)  # the agent should not drive our private tmux server
        env.pop("TMUX_PANE", None)
        os.execvpe(spec["argv"][0], spec["argv"], env)
    except OSError as exc:
        print(f"fleet launcher: cannot start {spec['argv'][0]!r}: {exc.strerror}", file=sys.stderr)
    os._exit(127)


def _record(exit_file: str | None, code: int) -> None:
    if not exit_file:
        return
    tmp = f"{exit_file}.tmp"
    with open(tmp, "w", encoding="ascii") as handle:
        handle.write(str(code))
    os.replace(tmp, exit_file)


def _forward(child: int, signum: int) -> None:
    try:
        os.kill(child, signum)
    except ProcessLookupError:  # the agent has exited and been reaped: nothing to tell
        pass


def _sibling(stem: str) -> ModuleType:
    """A module from beside this file, loaded by path (we run under -I -S)."""
    import importlib.util
    from pathlib import Path

    name = f"fleet_launcher_{stem}"
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{stem}.py"))
    if spec is None or spec.loader is None:  # a .py path always has a source loader
        raise ImportError(f"fleet launcher: cannot load {stem}.py beside {__file__}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def _stream_reader(kind: str) -> StreamReader:
    reader: StreamReader = _sibling("agent_streams").StreamReader(kind)
    return reader


def _render(kind: str, fd: int, child: int, env: dict[str, str]) -> None:
    """Print the agent's JSON events readably as they come, then the summary. An agent the
    reader finds stuck for good (gave_up) is stopped as a termination signal would stop it."""
    reader = _stream_reader(kind)
    if env.get("FLEET_NETWORK_WAIT_S"):  # a shorter wait, for tests
        reader.network_wait_s = float(env["FLEET_NETWORK_WAIT_S"])
    stopped = False
    with os.fdopen(fd, "r", encoding="utf-8", errors="replace", newline="\n") as events:
        for line in events:
            out = reader.feed(line)
            if out:
                sys.stdout.write("\n".join(out) + "\n")
                sys.stdout.flush()
            if reader.gave_up and not stopped:
                stopped = True
                _forward(child, signal.SIGTERM)
    sys.stdout.write("\n".join(reader.summary()) + "\n")
    sys.stdout.flush()


def _read_spec(path: str) -> LaunchSpec:
    """A host spec is in marshal format (written by the same interpreter that runs this: no
    json import, whose `re` costs milliseconds at every start); a container's is JSON."""
    spec: LaunchSpec
    if path.endswith(".marshal"):
        with open(path, "rb") as handle:
            spec = marshal.load(handle)
        return spec
    import json

    with open(path, encoding="utf-8") as handle:
        spec = json.load(handle)
    return spec


NOT_STARTED = 127  # as for an agent that could not be started
EXIT_FILE = "exit"  # beside a host spec: where a launcher given none records its status


def _await_go(fifo: str) -> None:
    """Return once the conductor said go, or let go of the FIFO (closed, or died)."""
    try:  # non-blocking open: never waits for a writer, there may be none left
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:  # removed as the conductor said go, before we looked
        return
    try:
        os.set_blocking(fd, True)
        os.read(fd, 1)  # a byte, or the end once no writer holds it
    finally:
        os.close(fd)


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: python -m fleet_tui.infra.launcher LAUNCH.marshal|LAUNCH.json [START_FIFO]", file=sys.stderr)
        return 2
    path = argv[1]
    if len(argv) == 3:
        _await_go(argv[2])
    try:
        spec = _read_spec(path)
    except FileNotFoundError:
        if len(argv) == 3:  # never given: its spawn stopped before the agent's start
            print("fleet launcher: no launch came; nothing started", file=sys.stderr)
            try:
                _record(os.path.join(os.path.dirname(path), EXIT_FILE), NOT_STARTED)
            except OSError:  # its directory removed meanwhile (the session's undoing)
                pass
            return NOT_STARTED
        raise
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:  # a container's spec, bound read-only: it holds no secrets
            if exc.errno != errno.EROFS:
                raise
    stream = spec.get("stream")
    reader_fd = writer_fd = None
    if stream:
        reader_fd, writer_fd = os.pipe()
    forward = _sibling("egress_forward") if spec.get("forwards") else None
    listeners = forward.bind(spec["forwards"]) if forward else []  # before the agent's first connect
    child = _start_child(spec, writer_fd)
    if forward:
        forward.serve(listeners, spec["egress_socket"])
    for sig in FORWARDED:
        signal.signal(sig, lambda signum, _frame: _forward(child, signum))
    if stream and reader_fd is not None and writer_fd is not None:
        os.close(writer_fd)
        _render(stream, reader_fd, child, {**os.environ, **spec.get("env", {})})
    _, status = os.waitpid(child, 0)  # retried on EINTR (PEP 475)
    code = os.waitstatus_to_exitcode(status)
    code = 128 - code if code < 0 else code  # killed by signal N -> 128+N, as shells report
    _record(spec.get("exit_file"), code)
    return code


if __name__ == "__main__":
    sys.stdout.flush()
    os._exit(main(sys.argv))
