"""Task verbs for scripts and SSH sessions, straight against the database (no server in
between): spawn, status, show, logs, stop, retry (--allow RULE), answer, delete, merge. Each takes --json.

Exit codes scripts can rely on (the error catalogue's, domain/errors.py): 0 done; 2 bad input or
configuration; 3 not found; 4 refused (tier, governor limit, credit or retry budget, runtime
unreachable); 5 conflict (task in the wrong status)."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shlex
from datetime import datetime, UTC
from typing import Any
from collections.abc import Awaitable, Callable

from fleet_tui.config import load_settings
from fleet_tui.domain.models import TASK_ID_PATTERN, Operator, RuntimeKind, SpawnRequest, TaskRecord, TaskType
from fleet_tui.domain.asks import ASKED_KEY, check_answer, check_grants, describe_asked
from fleet_tui.domain.text import strip_ansi
from fleet_tui.domain.validation import validated
from fleet_tui.engine.fleet_admin import AdministeredFleet
from fleet_tui.engine.ports import FleetFace
from fleet_tui.engine.session import close_conductor, open_conductor

MAX_LOG_LINES = 10_000
# spawn's flags by the SpawnRequest field each fills: errors name what the user typed
SPAWN_FLAGS = {"base_branch": "--base", "task_type": "--type", "agent": "--agent", "model": "--model",
               "runtime": "--runtime", "priority": "--priority", "idempotency_key": "--idempotency-key",
               "repo": "--repo"}


def task_id(value: str) -> str:
    """argparse type of a task id argument: refused before any database is opened."""
    if not re.match(TASK_ID_PATTERN, value):
        raise argparse.ArgumentTypeError("must be a task id: 1-64 letters, digits, _ or -")
    return value


def int_between(low: int, high: int) -> Callable[[str], int]:
    """argparse type of a whole number from low to high."""
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            number = None
        if number is None or not low <= number <= high:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low} to {high}")
        return number
    parse.__name__ = "number"
    return parse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    spawn = subparsers.add_parser("spawn", help="describe a task; the conductor admits and starts it")
    spawn.add_argument("description")
    spawn.add_argument("--repo", default=".", help="path of the git repository (default: .)")
    spawn.add_argument("--base", dest="base_branch", help="base branch (default: the repo's current branch)")
    spawn.add_argument("--type", dest="task_type", choices=[t.value for t in TaskType], default="feature")
    spawn.add_argument("--agent", help="agent profile (claude, codex, aider, gemini, custom, demo)")
    spawn.add_argument("--model")
    spawn.add_argument("--runtime", choices=[r.value for r in RuntimeKind])
    spawn.add_argument("--priority", type=int, default=50)
    spawn.add_argument("--idempotency-key")
    _json(spawn).set_defaults(handler=_sync(run_spawn, prepare=spawn_request))

    status = subparsers.add_parser("status", help="your tasks and the governor's headroom")
    status.add_argument("--all", action="store_true", help="every operator's tasks (admin)")
    _json(status).set_defaults(handler=_sync(run_status))

    show = subparsers.add_parser("show", help="one task: record, attempts, audit trail")
    show.add_argument("task_id", type=task_id)
    _json(show).set_defaults(handler=_sync(run_show))

    logs = subparsers.add_parser("logs", help="the agent's output")
    logs.add_argument("task_id", type=task_id)
    logs.add_argument("-n", "--lines", type=int_between(1, MAX_LOG_LINES), default=200)
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    _json(logs).set_defaults(handler=_sync(run_logs))

    for verb, text in (("stop", "stop a live task (cancelled; agent killed)"),
                       ("retry", "retry a failed or rejected task now"),
                       ("delete", "delete a finished task (worktree snapshot rules apply)"),
                       ("merge", "merge a ready task into its base")):
        sub = subparsers.add_parser(verb, help=text)
        sub.add_argument("task_id", type=task_id)
        if verb == "retry":
            sub.add_argument("--allow", action="append", default=[], metavar="RULE",
                             help="grant the agent this permission for the task from now on, e.g. "
                                  "'Bash(make lint)' (repeatable; `show` lists what it asked for)")
        _json(sub).set_defaults(handler=_sync(run_action, prepare=_check_action), verb=verb)

    answer = subparsers.add_parser("answer", help="answer an agent that waits for a person (needs input): "
                                                  "its session resumes with TEXT")
    answer.add_argument("task_id", type=task_id)
    answer.add_argument("text")
    _json(answer).set_defaults(handler=_sync(run_answer, prepare=lambda args: check_answer(args.text)))


def _json(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--json", action="store_true", help="print JSON")
    return parser


# Opened here, a Conductor: the task verbs ask only what any fleet answers (FleetFace), the
# admin verbs (dlq, routes, prefs, ops) its administration (FleetAdmin).
Handler = Callable[[AdministeredFleet, Operator, argparse.Namespace], Awaitable[int]]


def _sync(handler: Handler, prepare: Callable[[argparse.Namespace], object] | None = None
          ) -> Callable[[argparse.Namespace], int]:
    """The verb's handler run on an opened conductor; `prepare` checks the arguments first
    (raising ValidationFailed), so that bad input opens no database and changes nothing."""
    def run(args: argparse.Namespace) -> int:
        if prepare is not None:
            prepare(args)
        return asyncio.run(_with_conductor(handler, args))
    return run


async def _with_conductor(handler: Handler, args: argparse.Namespace) -> int:
    settings = load_settings()
    me = Operator(id=settings.operator.id, tier=settings.operator.tier, is_admin=settings.operator.is_admin)
    conductor = await open_conductor(settings)
    try:  # a FleetError reaches cli.main, which exits with the catalogue's code
        return await handler(conductor, me, args)
    finally:
        await close_conductor(conductor)


def _say(text: str) -> None:
    """Human output holds agents' and reviewers' text: no escape sequence reaches the
    terminal (`logs` alone prints the agent's output raw, as `docker logs` does)."""
    print(strip_ansi(text))


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def task_line(task: TaskRecord, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    age = int((now - task.created_at).total_seconds())
    agent = f"{task.agent or '-'}/{task.model or '-'}"
    return (f"{task.id:<13} {task.status:<11} {agent:<24} {task.branch or '-':<22} "
            f"{_age(age):>6} try {task.attempt}/{task.max_attempts} {task.ci_status or '-':<8} "
            f"{task.description.splitlines()[0][:48]}")


def _age(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def spawn_request(args: argparse.Namespace) -> None:
    """args.request: the SpawnRequest the flags describe, or ValidationFailed naming the flag."""
    fields = dict(description=args.description, repo=args.repo, base_branch=args.base_branch,
                  task_type=args.task_type, agent=args.agent, model=args.model, runtime=args.runtime,
                  priority=args.priority, idempotency_key=args.idempotency_key)
    args.request = validated(SpawnRequest, fields, names=SPAWN_FLAGS)


async def run_spawn(c: FleetFace, me: Operator, args: argparse.Namespace) -> int:
    result = await c.spawn(me, args.request)
    if args.json:
        _print_json(result.model_dump(mode="json"))
    elif result.task is None:
        print(f"queued (#{result.queue_id}): the fleet is at capacity; it starts when room frees")
    else:
        verb = "spawned" if result.created else "already exists"
        _say(f"{verb}: {task_line(result.task)}")
        if result.task.failure_reason:
            _say(f"  failed: {result.task.failure_reason}: {(result.task.failure_context or {}).get('message', '')}")
    if result.notice and not args.json:
        _say(f"  note: {result.notice}")
    return 0


async def run_status(c: FleetFace, me: Operator, args: argparse.Namespace) -> int:
    summary = await c.status(me, all_operators=args.all)
    if args.json:
        _print_json(summary.model_dump(mode="json"))
        return 0
    print(f"operator {summary.operator_id} ({summary.tier}): {summary.live}/{summary.limit} live; "
          f"fleet {summary.fleet_live}/{summary.fleet_capacity}")
    for task in summary.tasks:
        _say(task_line(task))
    return 0


async def run_show(c: FleetFace, me: Operator, args: argparse.Namespace) -> int:
    detail = await c.detail(me, args.task_id)
    if args.json:
        _print_json({"task": detail.task.model_dump(mode="json"), "audit": detail.audit,
                     "executions": [{k: v for k, v in e.items() if k != "prompt"} for e in detail.executions]})
        return 0
    task = detail.task
    _say(task_line(task))
    for name in ("description", "repo", "base_branch", "worktree_path", "tmux_session", "container_id",
                 "ci_status", "review_status", "failure_reason"):
        value = getattr(task, name)
        if value:
            _say(f"  {name}: {value}")
    blocked = task.metadata.get("merge_blocked")
    if blocked and task.status == "ready":
        _say(f"  merge: {blocked.get('next', '')}")
    for ask in (task.failure_context or {}).get(ASKED_KEY, []) if task.needs_input else []:
        _say(f"  needs input: the agent was refused {describe_asked([ask])}; "
             f"grant it: fleet-tui retry {task.id} --allow {shlex.quote(str(ask.get('grant', '')))}")
    if task.needs_input:
        _say(f"  or answer it: fleet-tui answer {task.id} TEXT")
    if task.tmux_session and task.is_live:  # the fleet's own tmux server (one per data directory)
        _say(f"  attach: tmux -L {c.settings.runtime.tmux_socket} attach-session -t ={task.tmux_session}")
    for run in detail.executions:
        _say(f"  attempt {run['attempt']}: {run['agent']}/{run['model']} exit={run['exit_code']} "
              f"failure={run['failure'] or '-'}")
    for row in detail.audit:
        _say(f"  {row['created_at']:%H:%M:%S} {row['action']} {row['from_status'] or ''}->{row['to_status'] or ''} "
              f"by {row['actor']}")
    return 0


async def run_logs(c: FleetFace, me: Operator, args: argparse.Namespace) -> int:
    """The last lines; with --follow, then every line after them once, as it is written."""
    lines, cursor = await c.logs_from(me, args.task_id, None, args.lines)
    for line in lines:
        print(json.dumps({"line": line}) if args.json else line)
    if args.follow:
        async for line in c.follow_logs(me, args.task_id, after=cursor):
            print(json.dumps({"line": line}) if args.json else line, flush=True)
    return 0


async def run_action(c: FleetFace, me: Operator, args: argparse.Namespace) -> int:
    if args.verb == "delete":
        await c.delete(me, args.task_id)
        if args.json:
            _print_json({"id": args.task_id, "deleted": True})
        else:
            print(f"deleted {args.task_id}")
        return 0
    if args.verb == "retry":
        task = await c.retry(me, args.task_id, allow=args.allow)
    else:
        task = await {"stop": c.stop, "merge": c.merge}[args.verb](me, args.task_id)
    _print_task(task, args.json)
    return 0


def _check_action(args: argparse.Namespace) -> None:
    check_grants(getattr(args, "allow", None) or [])


async def run_answer(c: FleetFace, me: Operator, args: argparse.Namespace) -> int:
    _print_task(await c.answer(me, args.task_id, args.text), args.json)
    return 0


def _print_task(task: TaskRecord, as_json: bool) -> None:
    if as_json:
        _print_json(task.model_dump(mode="json"))
    else:
        _say(task_line(task))
