"""The control room as a user runs it: the installed `fleet-tui` console script in a pane of
a real tmux terminal (its own tmux server), driven with send-keys and read with
capture-pane. Each room has a fresh data directory, database and agents' tmux socket."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable, Sequence

import asyncpg

from tests.fixtures.db import fetch
from tests.fixtures.engine import PASSING_CI, kill_tmux_server

# the console script pip installed next to this interpreter: what a user runs
FLEET_TUI = Path(sys.executable).with_name("fleet-tui")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# a form field's tall left border (▊) and the colours drawn just before it
FIELD_BORDER = re.compile(r"((?:\x1b\[[0-9;]*m)+)▊")
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|Error: .*object has no attribute|╭─+ Traceback")


class ScreenTimeout(AssertionError):
    pass


@dataclass(frozen=True)
class PaneExit:
    """The end of a pane's process as tmux reaped it: an exit status or a signal."""

    status: int | None
    signal: int | None

    @property
    def code(self) -> int:
        return self.status if self.status is not None else 128 + (self.signal or 0)

    def describe(self) -> str:
        return f"exit status {self.status}" if self.status is not None else f"killed by signal {self.signal}"


@dataclass
class Terminal:
    """One tmux server with one pane of cols x rows running argv."""

    socket: str = field(default_factory=lambda: f"fleet-term-{uuid.uuid4().hex[:10]}")
    cols: int = 160
    rows: int = 45
    seen: list[str] = field(default_factory=list)  # every screen read, for "never a traceback"

    def tmux(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args], capture_output=True,
                              text=True, timeout=30)
        if check and done.returncode != 0:
            raise AssertionError(f"tmux {args[0]} failed: {done.stderr.strip()}")
        return done.stdout

    def start(self, argv: list[str], *, cwd: Path, env: dict[str, str]) -> None:
        # remain-on-exit in the same command chain: an early exit keeps its last screen
        env = {k: v for k, v in env.items() if k not in ("TMUX", "TMUX_PANE")}
        done = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", "new-session", "-d", "-s", "room",
             "-x", str(self.cols), "-y", str(self.rows), "-c", str(cwd), *argv, ";",
             "set-option", "-w", "-t", "room:", "remain-on-exit", "on"],
            env=env, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr

    def screen(self) -> str:
        text = self.tmux("capture-pane", "-p", "-t", "room:")
        self.seen.append(text)
        return text

    def history(self) -> str:
        """The whole normal screen and its scrollback (where a crash leaves its traceback)."""
        return self.tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "room:")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "room:", *keys)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", "room:", "-l", "--", text)

    async def type_seen(self, text: str, timeout_s: float = 10.0) -> str:
        """Type text and wait until the app shows it, and a moment more: a Tab sent within
        ~0.3 s of typing into an Input is lost (seen with Textual 8.2 in tmux 3.3)."""
        self.type(text)
        screen = await self.wait_text(text, timeout_s)
        await asyncio.sleep(1.0)
        return screen

    def focused_label(self, labels: Sequence[str]) -> str | None:
        """Which of a form's fields (named by the labels above them) has the focus. Textual
        draws the focused field's tall left border in the accent colour and the others alike,
        so the odd one out in capture-pane -e is it; None when the focus is elsewhere."""
        styled = self.tmux("capture-pane", "-p", "-e", "-t", "room:").splitlines()
        plain = [ANSI.sub("", line) for line in styled]
        borders: dict[str, str] = {}
        for label in labels:
            at = next((n for n, line in enumerate(plain) if f"█  {label}" in line), None)
            if at is not None and at + 1 < len(styled) and (style := FIELD_BORDER.search(styled[at + 1])):
                borders[label] = style.group(1)
        odd = [label for label, style in borders.items()
               if sum(other == style for other in borders.values()) == 1]
        return odd[0] if len(borders) > 2 and len(odd) == 1 else None

    async def focus(self, label: str, labels: Sequence[str], timeout_s: float = 60.0) -> None:
        """Tab until the field under label has the focus, reading the focus from the screen
        after each Tab: a Tab the app lost is sent again, one too many goes round the form."""
        deadline = time.monotonic() + timeout_s
        while (current := self.focused_label(labels)) != label:
            if time.monotonic() > deadline:
                raise ScreenTimeout(f"timed out tabbing to {label!r}; the focus is on {current!r}:\n{self.screen()}")
            self.keys("Tab")
            moved = time.monotonic() + 3.0
            while self.focused_label(labels) == current and time.monotonic() < moved:
                await asyncio.sleep(0.1)

    def resize(self, cols: int, rows: int) -> None:
        self.cols, self.rows = cols, rows
        self.tmux("resize-window", "-t", "room:", "-x", str(cols), "-y", str(rows))

    def pane_state(self) -> str:
        """tmux's "pane_dead pane_dead_status pane_dead_signal", as it says it."""
        return self.tmux("list-panes", "-t", "room:", "-F",
                         "#{pane_dead} #{pane_dead_status} #{pane_dead_signal}").strip()

    def pane_process(self) -> str:
        """The pane's process as the kernel sees it (state, threads' wait channels, open files),
        for a failing test's message: an app that did not exit is still somewhere."""
        pid = self.tmux("list-panes", "-t", "room:", "-F", "#{pane_pid}").strip()
        proc = Path("/proc") / pid
        if not pid or not proc.exists():
            return f"pid {pid or '?'}: gone"
        lines = [f"pid {pid}: " + " ".join(line for line in (proc / "status").read_text().splitlines()
                                           if line.startswith(("State", "PPid", "SigIgn", "SigBlk", "Threads")))]
        for task in sorted((proc / "task").iterdir()):
            try:
                lines.append(f"  thread {task.name} {(task / 'comm').read_text().strip()} "
                             f"wchan={(task / 'wchan').read_text().strip()} "
                             f"{(task / 'stat').read_text().split(')')[1].split()[0]}")
            except OSError:
                pass
        try:
            fds = sorted(proc.joinpath("fd").iterdir(), key=lambda f: int(f.name))
            lines.append("  fds: " + ", ".join(f"{f.name}->{os.readlink(f)}" for f in fds))
        except OSError as exc:
            lines.append(f"  fds: {exc}")
        return "\n".join(lines)

    def pane_exit(self) -> PaneExit | None:
        """How the app's process ended, once tmux knows. tmux marks the pane dead when it
        reads EOF on the pty and learns the status only when it reaps the process: on a
        loaded machine the exiting process is preempted between the two and tmux answers
        "1" alone for a moment. That is not an end yet (it was once read as 129, SIGHUP)."""
        dead, status, killed_by = (self.pane_state().split(" ") + ["", "", ""])[:3]
        if dead != "1":
            return None
        if not (status or killed_by):
            self._remind_tmux_to_reap()
            return None
        return PaneExit(status=int(status) if status else None, signal=int(killed_by) if killed_by else None)

    def _remind_tmux_to_reap(self) -> None:
        """tmux 3.3a now and then misses the SIGCHLD of a pane's process: the process stays a
        zombie and the pane says "1" with no status for ever (seen in CI: 60 s; here 3 quits in
        14 under load, and a SIGCHLD sent by hand made tmux reap it at once). Only
        for a zombie: tmux then reaps it and reads the status the process exited with."""
        pid = self.tmux("list-panes", "-t", "room:", "-F", "#{pane_pid}", check=False).strip()
        try:
            state = next(line for line in (Path("/proc") / pid / "status").read_text().splitlines()
                         if line.startswith("State:"))
        except (OSError, StopIteration):
            return
        if "zombie" in state:
            server = self.tmux("display-message", "-p", "#{pid}", check=False).strip()
            if server.isdigit():
                os.kill(int(server), signal.SIGCHLD)

    def exited(self) -> int | None:
        """The app's exit status once its process is gone (128 + N if signal N killed it), else None."""
        end = self.pane_exit()
        return None if end is None else end.code

    async def wait_for(self, condition: Callable[[str], object], timeout_s: float = 30.0,
                       what: str = "screen") -> str:
        """The first screen for which condition holds; fails at once on a traceback."""
        deadline = time.monotonic() + timeout_s
        while True:
            text = self.screen()
            assert not TRACEBACK.search(text), f"traceback on screen:\n{self.history()}"
            if condition(text):
                return text
            if (end := self.pane_exit()) is not None:
                raise ScreenTimeout(f"the app exited ({end.describe()}) waiting for {what}:\n{self.history()}")
            if time.monotonic() > deadline:
                raise ScreenTimeout(f"timed out waiting for {what}; screen:\n{text}")
            await asyncio.sleep(0.1)

    async def wait_text(self, text: str, timeout_s: float = 30.0) -> str:
        return await self.wait_for(lambda screen: text in screen, timeout_s, what=repr(text))

    def close(self) -> None:
        kill_tmux_server(self.socket)


def row_of(screen: str, task_id: str) -> str | None:
    """The table line of a task (its id is the first cell), None if not shown."""
    for line in screen.splitlines():
        if line.strip().startswith(task_id):
            return line
    return None


def status_on_screen(screen: str, task_id: str) -> str | None:
    row = row_of(screen, task_id)
    return row.split()[1] if row is not None and len(row.split()) > 1 else None


@dataclass
class ControlRoom:
    """`fleet-tui` with no arguments in a terminal, on its own data directory, database and
    agents' tmux socket; `cli(...)` runs other `fleet-tui` verbs beside it."""

    root: Path
    db_url: str
    repo: Path
    term: Terminal = field(default_factory=Terminal)
    agents_socket: str = field(default_factory=lambda: f"fleet-agents-{uuid.uuid4().hex[:10]}")
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        # no COLUMNS/LINES: they would fix Textual's size whatever the terminal's
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("FLEET_") and k not in ("DATABASE_URL", "COLUMNS", "LINES")}
        env.update({
            "FLEET_DATABASE__URL": self.db_url,
            "FLEET_DATA_DIR": str(self.root / "data"),
            "FLEET_RUNTIME__TMUX_SOCKET": self.agents_socket,
            "FLEET_FORGE__CI_COMMAND": json.dumps(PASSING_CI),
            "FLEET_MONITOR__INTERVAL_S": "0.5",
            "FLEET_AGENTS__DEFAULT_PROFILE": "demo",
            "TERM": "xterm-256color",
            **self.extra_env,
        })
        return env

    async def start(self) -> str:
        """Run the console script; returns the first screen with the table loaded."""
        self.term.start([str(FLEET_TUI)], cwd=self.repo, env=self.env())
        return await self.term.wait_text("tasks shown", timeout_s=60)

    async def cli(self, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(subprocess.run, [str(FLEET_TUI), *args], cwd=self.repo, env=self.env(),
                                       capture_output=True, text=True, timeout=timeout_s)

    async def query(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return await fetch(self.db_url, sql, *args)

    async def status(self, task_id: str) -> str:
        rows = await self.query("SELECT status FROM fleet_tasks WHERE id = $1", task_id)
        return rows[0]["status"] if rows else "gone"

    async def task_ids(self) -> list[str]:
        return [r["id"] for r in await self.query("SELECT id FROM fleet_tasks ORDER BY created_at")]

    async def story(self, task_id: str) -> str:
        """The task's audit trail and failure, for a failing test's message."""
        rows = await self.query("SELECT action, from_status, to_status, actor, detail FROM fleet_audit"
                                " WHERE task_id = $1 ORDER BY id", task_id)
        task = await self.query("SELECT status, failure_reason, failure_context FROM fleet_tasks WHERE id = $1",
                                task_id)
        lines = [f"{r['action']} {r['from_status']}->{r['to_status']} by {r['actor']} {r['detail']}" for r in rows]
        return "\n".join([f"task {task_id}: {dict(task[0]) if task else 'gone'}", *lines])

    def agent_sessions(self) -> set[str]:
        out = subprocess.run(["tmux", "-L", self.agents_socket, "list-sessions", "-F", "#{session_name}"],
                             capture_output=True, text=True).stdout
        return set(out.split())

    def agent_session_alive(self, task_id: str) -> bool:
        """The agent's pane exists and its process has not exited."""
        out = subprocess.run(["tmux", "-L", self.agents_socket, "list-panes", "-t", f"=fleet-{task_id}:",
                              "-F", "#{pane_dead}"], capture_output=True, text=True)
        return out.returncode == 0 and out.stdout.split() == ["0"]

    async def quit(self, *keys: str) -> int:
        """q, then the quit dialog's keys; the app's exit status."""
        self.term.keys("q")
        await self.term.wait_text("Quit the control room?", timeout_s=10)  # not the footer's "q Quit"
        for key in keys:
            self.term.keys(key)
        deadline = time.monotonic() + 60
        while (code := self.term.exited()) is None:
            assert time.monotonic() < deadline, (f"the app did not exit ({self.term.pane_state()!r}):\n"
                                                 f"{self.term.pane_process()}\n{self.term.screen()}")
            await asyncio.sleep(0.1)
        return code

    def close(self) -> None:
        self.term.close()
        kill_tmux_server(self.agents_socket)

    def assert_no_traceback(self) -> None:
        for text in [*self.term.seen, self.term.history()]:
            assert not TRACEBACK.search(text), f"traceback on screen:\n{text}"
