"""`fleet-tui dlq ...`: the dead-letter queue of the event router: list, retry, discard."""

from __future__ import annotations

import argparse

from fleet_tui.domain.models import Operator
from fleet_tui.engine.fleet_admin import FleetAdmin
from fleet_tui.commands.tasks import _json, _print_json, _sync, int_between

MAX_BIGINT = 2**63 - 1  # letters' ids are bigint


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dlq = subparsers.add_parser("dlq", help="dead letters: failed critical steps and follow-ups")
    verbs = dlq.add_subparsers(dest="dlq_verb", required=True)
    listing = verbs.add_parser("list", help="open dead letters (yours; admins: all)")
    listing.add_argument("--all", action="store_true", help="include resolved and discarded letters")
    _json(listing).set_defaults(handler=_sync(run_list))
    for verb, text in (("retry", "retry a dead letter now"), ("discard", "give up on a dead letter")):
        sub = verbs.add_parser(verb, help=text)
        sub.add_argument("letter_id", type=int_between(1, MAX_BIGINT))
        _json(sub).set_defaults(handler=_sync(run_action), verb=verb)


async def run_list(c: FleetAdmin, me: Operator, args: argparse.Namespace) -> int:
    letters = await c.dead_letters(me, include_closed=args.all)
    if args.json:
        _print_json(letters)
        return 0
    for letter in letters:
        print(f"{letter['id']:<6} {letter['status']:<9} {letter['sequence_name']}.{letter['step_name'] or '-'} "
              f"task={letter['task_id'] or '-'} attempts={letter['attempts']} "
              f"next={letter['next_attempt_at']:%Y-%m-%d %H:%M:%S} {letter['error'][:80]}")
    if not letters:
        print("no dead letters")
    return 0


async def run_action(c: FleetAdmin, me: Operator, args: argparse.Namespace) -> int:
    if args.verb == "discard":
        await c.discard_dead_letter(me, args.letter_id)
        result = {"id": args.letter_id, "discarded": True}
        text = f"discarded dead letter {args.letter_id}"
    else:
        run = await c.retry_dead_letter(me, args.letter_id)
        result = {"id": args.letter_id, "status": run.status, "run_id": run.run_id, "error": run.error}
        text = f"retried dead letter {args.letter_id}: {run.status}" + (f" ({run.error})" if run.error else "")
    if args.json:
        _print_json(result)
    else:
        print(text)
    return 0
