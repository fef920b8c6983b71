"""The demo agent: a real process that behaves like a coding agent, scripted by its prompt.

Usage: ``python -m fleet_tui.infra.demo_agent [--model M] [PROMPT_FILE]``. Without
PROMPT_FILE the whole prompt is read from stdin. It works in the current directory (the
task's worktree).

Instructions are prompt lines starting with ``FLEET-DEMO:`` (anywhere in the prompt), or
entries of the environment variable FLEET_DEMO_MODE separated by ``;`` (same syntax, no
prefix). They run in fixed phases, whatever their order in the prompt:

1. ``fail-until-attempt N``  fail (exit 1) while env FLEET_ATTEMPT < N (default attempt 1)
   ``fail [reason]``         print an error and exit 1, changing nothing
   ``exit N``                exit with code N before changing anything (137 mimics OOM)
2. ``wait-input``            print "Continue? [y/N]" and wait for one line; "y" goes on,
                             anything else exits 1. The answer is read from stdin when the
                             prompt came from a file, else from /dev/tty (in tmux that is
                             the pane, so ``send-keys y Enter`` answers it).
3. ``stall SECONDS``         print nothing and change nothing for that long
4. ``write PATH TEXT``       write TEXT (``\\n`` means a newline) to PATH in the worktree
   ``append PATH TEXT``      append a line; PATH must stay inside the worktree (exit 2)
   With no write/append it appends a line to FLEET_DEMO.md, so any prompt gives a change.
   ``flood LINES``           print that many lines as fast as it can
   ``commit MESSAGE``        the commit message (default "demo: <first prompt line>")
   ``no-commit``             leave the edits uncommitted
   ``write-once-secret PATH``  on attempt 1 write a fake AWS key to PATH; on later attempts
                             write a clean version that reads it from the environment
5. prints ``usage: input_tokens=.. output_tokens=.. cost_usd=..``, then ``sleep SECONDS``
   if asked, and exits 0.

Review mode (``review``): the rest of the prompt is a change to review. Every other
instruction is ignored (the prompt quotes the task, whose instructions are not for the
reviewer). It prints one JSON verdict: approve, or request_changes when the diff holds the
marker (``review-marker TEXT``, default FLEET-REVIEW-REJECT); ``review-sleep SECONDS``
waits first (a slow reviewer).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "FLEET-DEMO:"
WAITING_TEXT = "Continue? [y/N]"
GIT_AUTHOR = ["-c", "user.name=Fleet Demo Agent", "-c", "user.email=demo-agent@fleet.invalid"]
DEFAULT_FILE = "FLEET_DEMO.md"
REVIEW_MARKER = "FLEET-REVIEW-REJECT"
# Shaped like an AWS access key id (AKIA + 16), but made up; reviewers must catch it.
FAKE_AWS_KEY = "AKIA" + "FLEETDEMO0SECRET"


@dataclass
class Script:
    fail: str | None = None
    fail_until_attempt: int = 0
    exit_code: int | None = None
    wait_input: bool = False
    stall_s: float = 0.0
    sleep_s: float = 0.0
    flood: int = 0
    edits: list[tuple[str, str, str]] = field(default_factory=list)  # (op, path, text)
    commit_message: str | None = None
    commit: bool = True
    review: bool = False
    review_marker: str = REVIEW_MARKER
    review_sleep_s: float = 0.0


def parse_script(prompt: str, env_mode: str = "") -> Script:
    entries = [line.strip()[len(PREFIX):] for line in prompt.splitlines()
               if line.strip().startswith(PREFIX)]
    entries += env_mode.split(";") if env_mode else []
    script = Script()
    for entry in entries:
        verb, _, rest = entry.strip().partition(" ")
        rest = rest.strip()
        if verb == "fail":
            script.fail = rest or "demo failure requested"
        elif verb == "fail-until-attempt":
            script.fail_until_attempt = int(rest)
        elif verb == "exit":
            script.exit_code = int(rest)
        elif verb == "wait-input":
            script.wait_input = True
        elif verb == "stall":
            script.stall_s = float(rest)
        elif verb == "sleep":
            script.sleep_s = float(rest)
        elif verb == "flood":
            script.flood = int(rest)
        elif verb in ("write", "append"):
            path, _, text = rest.partition(" ")
            script.edits.append((verb, path, text.replace("\\n", "\n")))
        elif verb == "commit":
            script.commit_message = rest or None
        elif verb == "no-commit":
            script.commit = False
        elif verb == "write-once-secret":
            attempt = int(os.environ.get("FLEET_ATTEMPT", "1") or 1)
            text = (f'AWS_ACCESS_KEY_ID = "{FAKE_AWS_KEY}"' if attempt <= 1 else
                    'import os\n\nAWS_ACCESS_KEY_ID = os.environ.get("AWS_ACCESS_KEY_ID", "")')
            script.edits.append(("write", rest or "config.py", text))
        elif verb == "review":
            script.review = True
        elif verb == "review-marker":
            script.review_marker = rest or REVIEW_MARKER
        elif verb == "review-sleep":
            script.review_sleep_s = float(rest)
        elif verb:
            say(f"ignoring unknown instruction {verb!r}")
    return script


def task_title(prompt: str) -> str:
    """The first line of the task's description: in a conductor's prompt, the first line of
    the "## Task" section after its facts (type, branches); else the prompt's first line.
    Never an instruction line or a heading."""
    lines = [ln.strip() for ln in prompt.splitlines()]
    if "## Task" in lines:
        section = lines[lines.index("## Task") + 1:]
        end = next((i for i, ln in enumerate(section) if ln.startswith("## ")), len(section))
        section = section[:end]
        if "" in section:  # the facts, a blank line, then the description
            lines = section[section.index(""):]
    return next((ln for ln in lines if ln and not ln.startswith((PREFIX, "#"))), "change")


def say(text: str) -> None:
    print(f"[demo] {text}", flush=True)


def confined(root: Path, relative: str) -> Path | None:
    """The path inside root, or None if it escapes it (or points into .git)."""
    target = (root / relative).resolve()
    if not relative or not target.is_relative_to(root) or target == root:
        return None
    if ".git" in target.relative_to(root).parts:
        return None
    return target


def read_answer(prompt_from_file: bool) -> str:
    if prompt_from_file:
        return sys.stdin.readline()
    try:
        with open("/dev/tty", encoding="utf-8", errors="replace") as tty:
            return tty.readline()
    except OSError:
        return ""


def git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *GIT_AUTHOR, *args], capture_output=True, text=True)


def review(prompt: str, script: Script) -> int:
    """Print one JSON verdict on the diff in the prompt; never touches the directory."""
    if script.review_sleep_s:
        time.sleep(script.review_sleep_s)
    hits = [line for line in prompt.splitlines()
            if script.review_marker in line and line.startswith("+") and not line.startswith("+++")]
    if hits:
        verdict = {"verdict": "request_changes",
                   "comments": [f"the change adds the marker {script.review_marker}; remove it"]}
    else:
        verdict = {"verdict": "approve", "comments": []}
    print(json.dumps(verdict), flush=True)
    words = len(prompt.split())
    print(f"usage: input_tokens={words * 4 + 100} output_tokens=30 cost_usd={words * 0.00001:.6f}",
          flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fleet-demo-agent")
    parser.add_argument("--model", default="demo-small")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run: skip failures, stalls and waits")
    parser.add_argument("prompt_file", nargs="?")
    args = parser.parse_args(argv)
    prompt = (Path(args.prompt_file).read_text(encoding="utf-8") if args.prompt_file
              else sys.stdin.read())
    script = parse_script(prompt, os.environ.get("FLEET_DEMO_MODE", ""))
    root = Path.cwd().resolve()
    say(f"model {args.model}; read a prompt of {len(prompt)} characters")
    if args.resume:
        say("resuming the interrupted run")
        script.fail = None
        script.fail_until_attempt = 0
        script.exit_code = None
        script.wait_input = False
        script.stall_s = 0.0
    if script.review:
        return review(prompt, script)

    attempt = int(os.environ.get("FLEET_ATTEMPT", "1") or 1)
    if attempt < script.fail_until_attempt:
        say(f"error: failing on attempt {attempt} (succeeds from {script.fail_until_attempt})")
        return 1
    if script.fail:
        say(f"error: {script.fail}")
        return 1
    if script.exit_code is not None:
        if script.exit_code == 137:
            say("Out of memory: Killed")
        return script.exit_code
    if script.wait_input:
        print(WAITING_TEXT, flush=True)
        answer = read_answer(bool(args.prompt_file)).strip().lower()
        if answer not in ("y", "yes"):
            say("declined; stopping")
            return 1
        say("continuing")
    if script.stall_s:
        time.sleep(script.stall_s)

    edits = script.edits or [("append", DEFAULT_FILE, f"- demo change at {time.time():.0f}")]
    for op, relative, text in edits:
        target = confined(root, relative)
        if target is None:
            say(f"error: refusing path outside the worktree: {relative!r}")
            return 2
        target.parent.mkdir(parents=True, exist_ok=True)
        if op == "write":
            target.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        else:
            with target.open("a", encoding="utf-8") as handle:
                handle.write(text + "\n")
        say(f"{op} {relative}")
    for i in range(script.flood):
        print(f"[demo] flood line {i} " + "x" * 60)
    sys.stdout.flush()

    if script.commit:
        message = script.commit_message or f"demo: {task_title(prompt)[:60]}"
        added = git("add", "-A")
        committed = git("commit", "-q", "-m", message) if added.returncode == 0 else added
        if committed.returncode != 0:
            say(f"error: git commit failed: {(committed.stderr or committed.stdout).strip()}")
            return 1
        say(f"committed: {message}")

    words = len(prompt.split())
    print(f"usage: input_tokens={words * 4 + 100} output_tokens={len(edits) * 50 + 20} "
          f"cost_usd={words * 0.00001 + 0.001:.6f}", flush=True)
    if script.sleep_s:
        time.sleep(script.sleep_s)
    say("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
