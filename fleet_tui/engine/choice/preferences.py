"""Operator preferences (fleet_config rows, store/preferences.py): the keys that exist, their
checks, and what the engine reads from them. A preference is the operator's own, set at run
time (`fleet-tui prefs set KEY VALUE`) and shared by every conductor; the settings file may
name the same choice for operators as a default (retry.usage_limit_opt_out there is a list
of operator ids); an operator's own row, true or false, wins over it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg

from fleet_tui.domain.errors import ValidationFailed
from fleet_tui.domain.models import Operator
from fleet_tui.store import preferences as rows
from fleet_tui.store.db import Database, system_read

USAGE_LIMIT_OPT_OUT = "retry.usage_limit_opt_out"
# key -> what it means (one line, shown by `prefs list`); every one holds true or false
KEYS = {USAGE_LIMIT_OPT_OUT: "a usage-limited task of mine is retried at once, spending a retry, and "
                             "my routing ignores agents paused for a usage limit"}


def parse(key: str, text: str) -> bool:
    """The value a command line gives for key, or ValidationFailed naming the field."""
    if key not in KEYS:
        raise ValidationFailed("key", f"must be one of {', '.join(sorted(KEYS))}")
    lowered = text.strip().lower()
    if lowered not in ("true", "false"):
        raise ValidationFailed("value", "must be true or false")
    return lowered == "true"


async def list_for(db: Database, operator: Operator) -> dict[str, Any]:
    """Every key with the operator's value (None: not set; the settings file decides)."""
    async with db.tenant(operator, kind="read") as conn:
        mine = await rows.all_of(conn, operator.id)
    return {key: mine.get(key) for key in sorted(KEYS)}


async def set_for(db: Database, operator: Operator, key: str, value: bool | None) -> None:
    """Set (or, with None, remove) one of the operator's preferences."""
    async with db.tenant(operator) as conn:
        if value is None:
            await rows.remove(conn, operator.id, key)
        else:
            await rows.put(conn, operator.id, key, value)


async def usage_limit_opt_outs(db: Database | asyncpg.Connection, configured: Iterable[str]) -> frozenset[str]:
    """Operators who opted out of waiting for usage limits: their own choice, else the
    settings file's list (`configured`). db: the Database, or the caller's connection."""
    async with system_read(db) as scope:
        chosen = await rows.values_of(scope, USAGE_LIMIT_OPT_OUT)
    listed = set(configured) - {op for op, value in chosen.items() if not value}
    return frozenset(listed | {op for op, value in chosen.items() if value})
