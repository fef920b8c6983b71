"""`fleet-tui prefs ...`: your own preferences (fleet_config rows), read by every conductor of
the fleet at once. list, set KEY true|false, unset KEY (the settings file decides again).
A key or value that is not known is refused naming it, before anything is opened."""

from __future__ import annotations

import argparse

from fleet_tui.commands.tasks import _json, _print_json, _sync
from fleet_tui.domain.models import Operator
from fleet_tui.engine.choice import preferences
from fleet_tui.engine.fleet_admin import FleetAdmin


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    prefs = subparsers.add_parser("prefs", help="your preferences, shared by every conductor of the fleet")
    verbs = prefs.add_subparsers(dest="prefs_verb", required=True)

    listing = verbs.add_parser("list", help="every preference, yours or unset")
    _json(listing).set_defaults(handler=_sync(run_list))

    put = verbs.add_parser("set", help="set one (true or false)")
    put.add_argument("key", help=", ".join(sorted(preferences.KEYS)))
    put.add_argument("value", help="true or false")
    _json(put).set_defaults(handler=_sync(run_set, _check_set))

    unset = verbs.add_parser("unset", help="remove yours: the settings file decides again")
    unset.add_argument("key")
    _json(unset).set_defaults(handler=_sync(run_set, _check_unset))


def _check_set(args: argparse.Namespace) -> None:
    args.parsed = preferences.parse(args.key, args.value)


def _check_unset(args: argparse.Namespace) -> None:
    preferences.parse(args.key, "false")  # the key must exist
    args.parsed = None


async def run_list(c: FleetAdmin, me: Operator, args: argparse.Namespace) -> int:
    values = await c.preferences(me)
    if args.json:
        _print_json(values)
        return 0
    for key, value in values.items():
        shown = "unset" if value is None else str(value).lower()
        print(f"{key:<28} {shown:<6} {preferences.KEYS[key]}")
    return 0


async def run_set(c: FleetAdmin, me: Operator, args: argparse.Namespace) -> int:
    await c.set_preference(me, args.key, args.parsed)
    if args.json:
        _print_json({"key": args.key, "value": args.parsed})
    else:
        print(f"{args.key} {'unset' if args.parsed is None else str(args.parsed).lower()} for {me.id}")
    return 0
