"""The terminal harness reads an app's end as tmux reports it. tmux marks a pane dead when it
reads EOF on the pty, and learns the exit status only when it reaps the process: on a loaded
machine an exiting process is preempted between the two, and tmux answers `pane_dead` 1 with
neither `pane_dead_status` nor `pane_dead_signal`. That state is made here on purpose (the
pane's process closes its terminal, then exits a second later); the harness must wait for the
status, not read the lone "1" as a signal (it used to say 129, "SIGHUP", for a clean exit)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from collections.abc import Iterator

import pytest

from tests.e2e.terminal import PaneExit, Terminal

# ignores SIGHUP: tmux closes a dead pane's pty, which hangs up whoever still runs on it
CLOSE_THEN_EXIT = ("import os, signal, sys, time\n"
                   "signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
                   "for fd in (0, 1, 2): os.close(fd)\n"
                   "time.sleep(1.0)\n"
                   "sys.exit({code})\n")
KILLED_BY_HUP = "import os, signal, time\ntime.sleep(0.3)\nos.kill(os.getpid(), signal.SIGHUP)\n"


@pytest.fixture
def term() -> Iterator[Terminal]:
    made = Terminal(cols=80, rows=24)
    yield made
    made.close()


def end_of(term: Terminal, timeout_s: float = 10.0) -> PaneExit:
    deadline = time.monotonic() + timeout_s
    while (end := term.pane_exit()) is None:
        assert time.monotonic() < deadline, f"no exit status from tmux: {term.pane_state()!r}"
        time.sleep(0.02)
    return end


@pytest.mark.parametrize("code", [0, 3])
def test_a_pane_dead_before_its_process_is_reaped_is_not_an_exit_yet(term: Terminal, tmp_path: Path,
                                                                    code: int) -> None:
    term.start([sys.executable, "-c", CLOSE_THEN_EXIT.format(code=code)], cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    deadline = time.monotonic() + 10
    while not term.pane_state().startswith("1"):
        assert time.monotonic() < deadline, "the pane never closed its terminal"
        time.sleep(0.02)
    assert term.pane_state().split() == ["1"]  # dead, status not known yet: the state seen under load
    assert term.exited() is None
    assert end_of(term) == PaneExit(status=code, signal=None)
    assert term.exited() == code


def test_a_process_killed_by_a_signal_is_reported_as_that_signal(term: Terminal, tmp_path: Path) -> None:
    term.start([sys.executable, "-c", KILLED_BY_HUP], cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    end = end_of(term)
    assert end == PaneExit(status=None, signal=1)
    assert term.exited() == 129 and "signal 1" in end.describe()
