"""`fleet-tui db upgrade|downgrade|status`: migrations against DATABASE_URL or the embedded server."""

from __future__ import annotations

import argparse
import asyncio
from typing import TypeVar
from collections.abc import Awaitable, Callable

from fleet_tui.config import Settings, load_settings
from fleet_tui.domain.errors import ValidationFailed
from fleet_tui.store import embedded, migrations
from fleet_tui.store.db import prepare_database, resolve_owner_url
from fleet_tui.store.errors import redact_url

T = TypeVar("T")


def register(subparsers: argparse._SubParsersAction) -> None:
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


async def _with_owner(settings: Settings, action: Callable[[str], Awaitable[T]]) -> T:
    owner_url, server = await resolve_owner_url(settings)
    try:
        return await action(owner_url)
    finally:
        if server is not None:
            await embedded.stop(server)


def _where(settings: Settings) -> str:
    url = settings.database_url
    return redact_url(url) if url else f"embedded server in {settings.data_dir / 'postgres'}"


def run_upgrade(args: argparse.Namespace) -> int:
    settings = load_settings()
    if args.to is not None:
        migrations.check_target(args.to)

    async def act(owner_url: str) -> list[int]:
        before = {s.version for s in await migrations.status(owner_url) if s.applied_at}
        await prepare_database(settings, owner_url, args.to)
        after = {s.version for s in await migrations.status(owner_url) if s.applied_at}
        return sorted(after - before)

    done = asyncio.run(_with_owner(settings, act))
    print(f"{_where(settings)}: " + (f"applied {', '.join(f'{v:03d}' for v in done)}" if done else "up to date"))
    return 0


def run_downgrade(args: argparse.Namespace) -> int:
    settings = load_settings()

    async def act(owner_url: str) -> list[int]:
        target = args.to
        if target is None:
            applied = [s.version for s in await migrations.status(owner_url) if s.applied_at]
            if not applied:
                return []
            target = max([v for v in applied if v < max(applied)], default=0)
        if target < 0:
            raise ValidationFailed("to", "must be 0 or a migration number")
        return await migrations.downgrade(owner_url, target)

    undone = asyncio.run(_with_owner(settings, act))
    print(f"{_where(settings)}: " + (f"reverted {', '.join(f'{v:03d}' for v in undone)}" if undone else "nothing to revert"))
    return 0


def run_status(args: argparse.Namespace) -> int:
    settings = load_settings()
    states = asyncio.run(_with_owner(settings, migrations.status))
    print(_where(settings))
    for state in states:
        when = state.applied_at.isoformat(timespec="seconds") if state.applied_at else "pending"
        checksum = {True: "checksum ok", False: "EDITED since applied", None: ""}[state.checksum_ok]
        print(f"  {state.version:03d} {state.name:<24} {when:<25} {checksum}".rstrip())
    edited = [s for s in states if s.checksum_ok is False]
    return 4 if edited else 0
