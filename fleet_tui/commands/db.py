"""`fleet-tui db upgrade|downgrade|status`: migrations against DATABASE_URL or the embedded server."""

from __future__ import annotations

import argparse
import asyncio

from fleet_tui.config import load_settings
from fleet_tui.engine.session import (
    check_migration_target,
    database_place,
    downgrade_database,
    migration_status,
    upgrade_database,
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = subparsers.add_parser("db", help="database migrations (DATABASE_URL or the embedded server)")
    verbs = db.add_subparsers(dest="db_command", required=True, metavar="{upgrade,downgrade,status}")
    up = verbs.add_parser("upgrade", help="apply pending migrations (and set up the app role)")
    up.add_argument("--to", type=int, default=None, metavar="N", help="stop at migration N")
    up.set_defaults(handler=run_upgrade)
    down = verbs.add_parser("downgrade", help="revert migrations (default: the newest one)")
    down.add_argument("--to", type=int, default=None, metavar="N", help="revert down to N (0: all)")
    down.set_defaults(handler=run_downgrade)
    verbs.add_parser("status", help="list migrations, when they were applied and whether their files "
                                    "still match (checksum)").set_defaults(handler=run_status)


def run_upgrade(args: argparse.Namespace) -> int:
    settings = load_settings()
    if args.to is not None:
        check_migration_target(args.to)  # refused before anything is opened
    done = asyncio.run(upgrade_database(settings, args.to))
    print(f"{database_place(settings)}: "
          + (f"applied {', '.join(f'{v:03d}' for v in done)}" if done else "up to date"))
    return 0


def run_downgrade(args: argparse.Namespace) -> int:
    settings = load_settings()
    undone = asyncio.run(downgrade_database(settings, args.to))
    print(f"{database_place(settings)}: "
          + (f"reverted {', '.join(f'{v:03d}' for v in undone)}" if undone else "nothing to revert"))
    return 0


def run_status(args: argparse.Namespace) -> int:
    settings = load_settings()
    states = asyncio.run(migration_status(settings))
    print(database_place(settings))
    for state in states:
        when = state.applied_at.isoformat(timespec="seconds") if state.applied_at else "pending"
        checksum = {True: "checksum ok", False: "EDITED since applied", None: ""}[state.checksum_ok]
        print(f"  {state.version:03d} {state.name:<24} {when:<25} {checksum}".rstrip())
    edited = [s for s in states if s.checksum_ok is False]
    return 4 if edited else 0
