"""`fleet-tui routes ...`: the event router's policy. list, show, set (upsert an override
from JSON), delete, breakers. Writes are validated (unknown adapters, chains deeper than 5,
malformed conditions are refused naming the field); --platform (admins) changes defaults."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from fleet_tui.domain.errors import ValidationFailed
from fleet_tui.domain.models import Operator
from fleet_tui.engine.fleet_admin import FleetAdmin
from fleet_tui.commands.tasks import _json, _print_json, _sync

KINDS = ("route", "sequence", "handoff")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    routes = subparsers.add_parser("routes", help="event routes, sequences and handoffs (policies as data)")
    verbs = routes.add_subparsers(dest="routes_verb", required=True)

    listing = verbs.add_parser("list", help="platform defaults and your overrides")
    listing.add_argument("--kind", choices=KINDS, default="route")
    _json(listing).set_defaults(handler=_sync(run_list))

    show = verbs.add_parser("show", help="one item: effective value and where it comes from")
    show.add_argument("kind", choices=KINDS)
    show.add_argument("key", help="event type (route) or name (sequence, handoff)")
    _json(show).set_defaults(handler=_sync(run_show))

    put = verbs.add_parser("set", help="create or replace an override from JSON")
    put.add_argument("kind", choices=KINDS)
    source = put.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", type=Path, help="a JSON file holding the item")
    source.add_argument("--data", help="the item as a JSON string")
    put.add_argument("--platform", action="store_true", help="change the platform default (admin)")
    _json(put).set_defaults(handler=_sync(run_set))

    delete = verbs.add_parser("delete", help="remove an override (the default applies again)")
    delete.add_argument("kind", choices=KINDS)
    delete.add_argument("key")
    delete.add_argument("--platform", action="store_true", help="remove a platform default (admin)")
    _json(delete).set_defaults(handler=_sync(run_delete))

    breakers = verbs.add_parser("breakers", help="circuit breaker states of the fleet's adapters")
    _json(breakers).set_defaults(handler=_sync(run_breakers))


def _item_json(args: argparse.Namespace) -> dict[str, Any]:
    try:
        text = args.file.read_text() if args.file else args.data
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationFailed("--file", f"cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationFailed("--file" if args.file else "--data", f"is not JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ValidationFailed("--file" if args.file else "--data", "must hold a JSON object")
    return data


def _key_name(kind: str) -> str:
    return "event_type" if kind == "route" else "name"


async def run_list(c: FleetAdmin, me: Operator, args: argparse.Namespace) -> int:
    rows = await c.routes(me, args.kind)
    if args.json:
        _print_json(rows)
        return 0
    for row in rows:
        owner = row["operator_id"] or "platform"
        detail = {"route": lambda r: f"-> {r['sequence_name']} {json.dumps(r['match'])}",
                  "sequence": lambda r: f"{len(r['steps'])} steps: {', '.join(s['name'] for s in r['steps'])}",
                  "handoff": lambda r: f"{r['source_sequence']}.{r['source_step']} -> {r['target_sequence']} "
                                       f"if {json.dumps(r['conditions'])}"}[args.kind](row)
        print(f"{row[_key_name(args.kind)]:<28} {owner:<16} {detail}")
    return 0


async def run_show(c: FleetAdmin, me: Operator, args: argparse.Namespace) -> int:
    shown = await c.route(me, args.kind, args.key)
    if args.json:
        _print_json(shown)
    else:
        print(f"{args.kind} {args.key} ({shown['source']})")
        print(json.dumps(shown["effective"], indent=2, default=str))
    return 0


async def run_set(c: FleetAdmin, me: Operator, args: argparse.Namespace) -> int:
    row = await c.save_route(me, args.kind, _item_json(args), platform=args.platform)
    if args.json:
        _print_json(row)
    else:
        print(f"saved {args.kind} {row[_key_name(args.kind)]} for {row['operator_id'] or 'the platform'}")
    return 0


async def run_delete(c: FleetAdmin, me: Operator, args: argparse.Namespace) -> int:
    await c.delete_route(me, args.kind, args.key, platform=args.platform)
    if args.json:
        _print_json({"kind": args.kind, "key": args.key, "deleted": True})
    else:
        print(f"deleted {args.kind} {args.key}")
    return 0


async def run_breakers(c: FleetAdmin, me: Operator, args: argparse.Namespace) -> int:
    states = await c.breaker_states()
    if args.json:
        _print_json(states)
    else:
        for b in states:
            print(f"{b['name']:<32} {b['state']:<10} failures={b['recent_failures']} retry_in={b['retry_in_s']}s")
        if not states:
            print("no adapter has been called in this fleet")
    return 0
