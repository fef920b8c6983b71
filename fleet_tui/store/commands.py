"""fleet_commands: what an observer face asks of the fleet's conductors.

submit writes a validated command as its operator (row-level security); a conductor
claims it (FOR UPDATE SKIP LOCKED) when it may run it: a task's command belongs to the
conductor holding the task's lease, or that held it last while it is still alive, so the
command runs where the agent, its log and its worktree are; spawns and commands on tasks
nobody holds go to any conductor. A claim expires, so a dead conductor's command is
taken again; finish is fenced on the claimer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from fleet_tui.domain.commands import CommandStatus, CommandVerb, validate_command
from fleet_tui.domain.models import Operator, Tier
from fleet_tui.store.errors import as_validation_error

if TYPE_CHECKING:
    from fleet_tui.store.db import Database

SUBMIT_CHANNEL = "fleet_commands"
DONE_CHANNEL = "fleet_command_done"
ABANDONED = "abandoned"
_COLUMNS = ("id, operator_id, operator_tier, operator_is_admin, task_id, verb, args, status, result, error,"
            " error_kind, claimed_by, attempts, created_at, finished_at")


@dataclass(frozen=True)
class Command:
    id: int
    operator: Operator
    task_id: str | None
    verb: CommandVerb
    args: dict[str, Any]
    status: CommandStatus
    result: dict[str, Any] | None
    error: str | None
    error_kind: str | None
    claimed_by: str | None
    attempts: int
    created_at: datetime
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.status in (CommandStatus.DONE, CommandStatus.FAILED)


def _command(row: asyncpg.Record) -> Command:
    return Command(
        id=row["id"],
        operator=Operator(id=row["operator_id"], tier=Tier(row["operator_tier"]),
                          is_admin=row["operator_is_admin"]),
        task_id=row["task_id"], verb=CommandVerb(row["verb"]), args=row["args"] or {},
        status=CommandStatus(row["status"]), result=row["result"], error=row["error"],
        error_kind=row["error_kind"], claimed_by=row["claimed_by"], attempts=row["attempts"],
        created_at=row["created_at"], finished_at=row["finished_at"])


async def submit(db: Database, operator: Operator, verb: str, *, task_id: str | None = None,
                 args: dict[str, Any] | None = None) -> int:
    """The new command's id; ValidationFailed (and no row) for bad input."""
    known, task_id, args = validate_command(verb, task_id, args)
    async with db.tenant(operator) as conn:
        try:
            command_id: int = await conn.fetchval(
                "INSERT INTO fleet_commands (operator_id, operator_tier, operator_is_admin, task_id, verb, args)"
                " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                operator.id, str(operator.tier), operator.is_admin, task_id, str(known), args)
            return command_id
        except asyncpg.PostgresError as exc:
            raise as_validation_error(exc) or exc from None


# Claimable: pending, or running under an expired claim (its conductor died or hung), and
# either no task, or a task whose lease is ours, or whose last holder is gone (lease
# expired and the holder stopped or stopped beating).
_CLAIM = f"""
UPDATE fleet_commands c SET status = 'running', claimed_by = $1, claimed_at = now(),
       claim_expires_at = now() + make_interval(secs => $2), attempts = c.attempts + 1
FROM (
    SELECT k.id FROM fleet_commands k
    LEFT JOIN fleet_leases l ON l.task_id = k.task_id
    LEFT JOIN fleet_conductors h ON h.id = l.owner
    WHERE (k.status = 'pending' OR (k.status = 'running' AND k.claim_expires_at < now()))
      AND (k.task_id IS NULL OR l.task_id IS NULL OR l.owner = $1
           OR (l.expires_at < now() AND (h.id IS NULL OR h.stopped_at IS NOT NULL
                                         OR h.heartbeat_at < now() - make_interval(secs => $3))))
    ORDER BY k.id LIMIT $4
    FOR UPDATE OF k SKIP LOCKED
) picked
WHERE c.id = picked.id
RETURNING {', '.join('c.' + name.strip() for name in _COLUMNS.split(','))}
"""


async def claim(db: Database, conductor_id: str, *, ttl_s: float, alive_s: float, limit: int) -> list[Command]:
    if limit <= 0:
        return []
    async with db.system() as conn:
        rows = await conn.fetch(_CLAIM, conductor_id, float(ttl_s), float(alive_s), limit)
    return sorted((_command(r) for r in rows), key=lambda c: c.id)


async def renew(db: Database, conductor_id: str, ids: list[int], ttl_s: float) -> int:
    """Extend our claims on commands still running (a long spawn must not be taken twice)."""
    if not ids:
        return 0
    async with db.system() as conn:
        status = await conn.execute(
            "UPDATE fleet_commands SET claim_expires_at = now() + make_interval(secs => $3)"
            " WHERE id = ANY($2::bigint[]) AND claimed_by = $1 AND status = 'running'",
            conductor_id, ids, float(ttl_s))
    return int(status.split()[-1])


async def finish(db: Database, command_id: int, conductor_id: str, *, result: dict[str, Any] | None = None,
                 error: str | None = None, error_kind: str | None = None) -> bool:
    """Done (result) or failed (error). False when the claim was no longer ours."""
    status = CommandStatus.FAILED if error is not None else CommandStatus.DONE
    async with db.system() as conn:
        outcome: str = await conn.execute(
            "UPDATE fleet_commands SET status = $3, result = $4, error = $5, error_kind = $6, finished_at = now()"
            " WHERE id = $1 AND claimed_by = $2 AND status = 'running'",
            command_id, conductor_id, str(status), result, error, error_kind)
    return outcome.endswith(" 1")


async def fetch(db: Database, operator: Operator, command_id: int) -> Command | None:
    async with db.tenant(operator, kind="read") as conn:
        row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM fleet_commands WHERE id = $1", command_id)
    return None if row is None else _command(row)


async def abandon(db: Database, operator: Operator, command_id: int, reason: str) -> bool:
    """Withdraw a command no conductor has taken yet (so it never runs late). False when a
    conductor took it meanwhile."""
    async with db.tenant(operator) as conn:
        outcome: str = await conn.execute(
            "UPDATE fleet_commands SET status = 'failed', error = $2, error_kind = $3, finished_at = now()"
            " WHERE id = $1 AND status = 'pending'", command_id, reason, ABANDONED)
    return outcome.endswith(" 1")


async def forget(db: Database, operator: Operator, command_id: int) -> None:
    """Remove a finished command whose result has been read (logs polls would pile up)."""
    async with db.tenant(operator) as conn:
        await conn.execute("DELETE FROM fleet_commands WHERE id = $1 AND status IN ('done', 'failed')", command_id)


async def delete_finished_before(db: Database, before: datetime) -> int:
    async with db.system() as conn:
        status = await conn.execute("DELETE FROM fleet_commands WHERE finished_at < $1", before)
    return int(status.split()[-1])
