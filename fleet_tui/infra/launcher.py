"""Starts an agent inside a tmux pane without any shell seeing user text.

tmux starts ``python -m fleet_tui.infra.launcher LAUNCH.json`` (argv exec'd directly).
LAUNCH.json (mode 0600, written by TmuxRuntime) holds the agent's argv, its working
directory, the prompt file, how the prompt is given and the secret environment. The
launcher reads it, deletes it at once (secrets live on disk only between spawn and start),
puts the prompt file on stdin when the profile reads stdin, and execs the agent, so the
pane's exit status is the agent's own.
"""

from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m fleet_tui.infra.launcher LAUNCH.json", file=sys.stderr)
        return 2
    path = argv[1]
    try:
        with open(path, encoding="utf-8") as handle:
            spec = json.load(handle)
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    os.chdir(spec["cwd"])
    env = {**os.environ, **spec.get("env", {})}
    env.pop("TMUX", None)  # the agent should not drive our private tmux server
    env.pop("TMUX_PANE", None)
    if spec["prompt_via"] == "stdin":
        fd = os.open(spec["prompt_file"], os.O_RDONLY)
        os.dup2(fd, 0)
        os.close(fd)
    try:
        os.execvpe(spec["argv"][0], spec["argv"], env)
    except OSError as exc:
        print(f"fleet launcher: cannot start {spec['argv'][0]!r}: {exc.strerror}", file=sys.stderr)
        return 127
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv))
