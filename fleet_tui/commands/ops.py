"""Operations verbs: `fleet-tui sweep` (disk hygiene) and `fleet-tui invariants`."""

from __future__ import annotations

import argparse
import json

from fleet_tui.commands.tasks import _json, _sync
from fleet_tui.domain.models import Operator
from fleet_tui.engine.fleet_admin import FleetAdmin


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sweep = subparsers.add_parser("sweep", help="remove finished tasks' worktrees past retention")
    _json(sweep).set_defaults(handler=_sync(run_sweep))
    inv = subparsers.add_parser("invariants", help="check INV-014..INV-018 now (exit 1 if any fails)")
    _json(inv).set_defaults(handler=_sync(run_invariants))


async def run_sweep(c: FleetAdmin, me: Operator, args: argparse.Namespace) -> int:
    report = await c.sweep()
    if args.json:
        print(json.dumps(report.__dict__, indent=2))
    else:
        print(f"removed {len(report.removed)} worktrees ({len(report.bundles)} bundles kept); "
              f"worktrees use {report.disk_bytes / 1e6:.1f} MB")
        for error in report.errors:
            print(f"  error: {error}")
    return 0


async def run_invariants(c: FleetAdmin, me: Operator, args: argparse.Namespace) -> int:
    results = await c.invariants()
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        for r in results:
            print(f"{r.id} {'ok  ' if r.satisfied else 'FAIL'} {r.name}: {r.detail}")
    return 0 if all(r.satisfied for r in results) else 1
