"""Time to the control room's first frame, and to a usable table, on embedded defaults.

Runs the real `fleet-tui` (no arguments, no configuration) in a pseudo-terminal, as a user
would, with a fresh data directory (cold: initdb, start, migrations) and then again on it
(warm: the cluster exists). The first frame is the first output holding the main screen
(its "Governor headroom" panel, with the loading step); ready is the status line's task
count. The raw tool is a bare Textual app showing one line in the same terminal.

    .venv/bin/python bench/first_frame.py
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLEET = ROOT / ".venv" / "bin" / "fleet-tui"
COLS, ROWS = 160, 50
BARE_APP = ("from textual.app import App\nfrom textual.widgets import Static\n"
            "class Bare(App):\n    def compose(self):\n        yield Static('bare textual first frame')\n"
            "Bare().run()\n")


def launch(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=follower, stdout=follower, stderr=follower,
                            start_new_session=True)
    os.close(follower)
    return proc, leader


def wait_for(leader: int, markers: list[bytes], started: float, timeout_s: float = 120) -> dict[bytes, float]:
    """Seconds from start until each marker first appears in the terminal's output."""
    seen: dict[bytes, float] = {}
    out = b""
    while len(seen) < len(markers) and time.perf_counter() - started < timeout_s:
        ready, _, _ = select.select([leader], [], [], 0.05)
        if not ready:
            continue
        try:
            out += os.read(leader, 65536)
        except OSError:
            break
        for marker in markers:
            if marker not in seen and marker in out:
                seen[marker] = time.perf_counter() - started
    return seen


def quit_app(proc: subprocess.Popen[bytes], leader: int) -> None:
    for keys in (b"q", b"\r"):  # quit; the quit dialog (if agents live) defaults to keep them
        if proc.poll() is not None:
            break
        os.write(leader, keys)
        time.sleep(1.0)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    os.close(leader)


def run_fleet(home: Path, repo: Path) -> dict[bytes, float]:
    env = {k: v for k, v in os.environ.items() if "DATABASE" not in k}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"), XDG_CONFIG_HOME=str(home / "config"),
               TERM="xterm-256color")
    started = time.perf_counter()
    proc, leader = launch([str(FLEET)], repo, env)
    seen = wait_for(leader, [b"Governor headroom", b"tasks shown"], started)
    quit_app(proc, leader)
    return seen


def run_bare(home: Path) -> float | None:
    started = time.perf_counter()
    proc, leader = launch([sys.executable, "-c", BARE_APP], home, {**os.environ, "TERM": "xterm-256color"})
    seen = wait_for(leader, [b"bare textual first frame"], started, timeout_s=30)
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=10)
    os.close(leader)
    return seen.get(b"bare textual first frame")


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="fleet-first-frame-"))
    repo = home / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@localhost", "commit", "-q",
                    "--allow-empty", "-m", "init"], cwd=repo, check=True)
    try:
        bare = run_bare(home)
        print(f"bare Textual app, first frame: {bare:.2f}s" if bare else "bare Textual app: no frame")
        for label in ("cold (new data dir: initdb, start, migrations)", "warm (the cluster exists)"):
            seen = run_fleet(home, repo)
            cluster = home / "data" / "fleet-tui" / "postgres" / "data" / "PG_VERSION"
            assert cluster.exists(), f"no embedded cluster at {cluster}: the run used another database"
            frame, ready = seen.get(b"Governor headroom"), seen.get(b"tasks shown")
            ratio = f" = {frame / bare:.1f}x the bare app" if frame and bare else ""
            print(f"fleet-tui {label}: first frame {frame:.2f}s{ratio} (target < 2 s); "
                  f"table ready {ready:.2f}s" if frame and ready else f"fleet-tui {label}: {seen}")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
