"""Conductor registrations and task leases. A lease is (owner, epoch): every write made
under it checks both, so a conductor that lost its lease (paused, cut off) changes nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fleet_tui.domain.models import Lease, TaskRecord
from fleet_tui.domain.status import TERMINAL_STATUSES
from fleet_tui.store.records import TASK_COLUMNS, to_task

if TYPE_CHECKING:
    from fleet_tui.store.db import Database

_TERMINAL = sorted(str(s) for s in TERMINAL_STATUSES)
_T_COLUMNS = ", ".join(f"t.{c}" for c in TASK_COLUMNS)

# Candidates: live tasks with no lease, an expired one, or ours. The upsert takes a row only
# if it is still ours or expired when its row lock is held, so two conductors racing for the
# same task cannot both win. Re-taking a lapsed lease (even our own) bumps the epoch.
_CLAIM = f"""
WITH candidates AS (
    SELECT t.id, l.owner = $1 AS ours FROM fleet_tasks t
    LEFT JOIN fleet_leases l ON l.task_id = t.id
    WHERE t.status <> ALL($3::text[])
      AND (l.task_id IS NULL OR l.owner = $1 OR l.expires_at < now())
    ORDER BY (l.owner = $1) DESC NULLS LAST, t.created_at
    LIMIT $4
), claimed AS (
    INSERT INTO fleet_leases (task_id, owner, epoch, expires_at)
    SELECT id, $1, 1, now() + make_interval(secs => $2) FROM candidates
    ON CONFLICT (task_id) DO UPDATE SET
        epoch = CASE WHEN fleet_leases.owner = EXCLUDED.owner AND fleet_leases.expires_at >= now()
                     THEN fleet_leases.epoch ELSE fleet_leases.epoch + 1 END,
        owner = EXCLUDED.owner,
        expires_at = EXCLUDED.expires_at
    WHERE fleet_leases.owner = EXCLUDED.owner OR fleet_leases.expires_at < now()
    RETURNING task_id, epoch
)
SELECT {_T_COLUMNS}, c.epoch AS lease_epoch FROM claimed c JOIN fleet_tasks t ON t.id = c.task_id
"""


async def register(db: Database, conductor_id: str, host: str, pid: int) -> None:
    async with db.system() as conn:
        await conn.execute(
            "INSERT INTO fleet_conductors (id, host, pid) VALUES ($1, $2, $3)"
            " ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), stopped_at = NULL",
            conductor_id, host, pid)


async def heartbeat_and_share(db: Database, conductor_id: str, ttl_s: float) -> tuple[int, int]:
    """Beat, and return (live conductors, live tasks) for the fair-share claim limit."""
    async with db.system() as conn:
        row = await conn.fetchrow(
            "WITH beat AS (UPDATE fleet_conductors SET heartbeat_at = now() WHERE id = $1)"
            " SELECT (SELECT count(*) FROM fleet_conductors WHERE stopped_at IS NULL"
            "         AND heartbeat_at > now() - make_interval(secs => $2)) AS conductors,"
            "        (SELECT count(*) FROM fleet_tasks WHERE status <> ALL($3::text[])) AS live",
            conductor_id, ttl_s, _TERMINAL)
    return max(int(row["conductors"]), 1), int(row["live"])


async def claim(db: Database, conductor_id: str, ttl_s: float, limit: int) -> list[tuple[TaskRecord, Lease]]:
    """Renew our leases and take unowned or expired ones, up to limit, in one statement."""
    async with db.system() as conn:
        rows = await conn.fetch(_CLAIM, conductor_id, ttl_s, _TERMINAL, limit)
    return [(to_task(r), Lease(owner=conductor_id, epoch=r["lease_epoch"])) for r in rows]


async def renew(db: Database, task_id: str, lease: Lease, ttl_s: float) -> bool:
    """Extend one lease while it is still (owner, epoch): False once another conductor took
    it over (a takeover bumps the epoch), even if it lapsed meanwhile."""
    async with db.system() as conn:
        renewed = await conn.fetchval(
            "UPDATE fleet_leases SET expires_at = now() + make_interval(secs => $4)"
            " WHERE task_id = $1 AND owner = $2 AND epoch = $3 RETURNING true",
            task_id, lease.owner, lease.epoch, float(ttl_s))
    return bool(renewed)


async def release(db: Database, conductor_id: str) -> int:
    """On a clean shutdown: let other conductors take our tasks at once."""
    async with db.system() as conn:
        await conn.execute("UPDATE fleet_conductors SET stopped_at = now() WHERE id = $1", conductor_id)
        result = await conn.execute(
            "UPDATE fleet_leases SET expires_at = now() - interval '1 second' WHERE owner = $1", conductor_id)
    return int(result.split()[-1])


async def holders(db: Database) -> dict[str, str]:
    """task id -> current (unexpired) lease owner."""
    async with db.system(kind="read") as conn:
        rows = await conn.fetch("SELECT task_id, owner FROM fleet_leases WHERE expires_at > now()")
    return {r["task_id"]: r["owner"] for r in rows}


LEASE_CLAUSE = ("EXISTS (SELECT 1 FROM fleet_leases l WHERE l.task_id = fleet_tasks.id"
                " AND l.owner = ${owner} AND l.epoch = ${epoch} AND l.expires_at > now())")


async def live_conductors(db: Database, alive_s: float) -> int:
    """Conductors that beat within alive_s and did not stop: what an observer reports."""
    async with db.system(kind="read") as conn:
        alive: int = await conn.fetchval(
            "SELECT count(*) FROM fleet_conductors WHERE stopped_at IS NULL"
            " AND heartbeat_at > now() - make_interval(secs => $1)", float(alive_s))
        return alive


async def owners_of(db: Database, task_ids: list[str]) -> dict[str, str]:
    """task id -> current lease owner (expired or not), for the given tasks."""
    async with db.system(kind="read") as conn:
        rows = await conn.fetch("SELECT task_id, owner FROM fleet_leases WHERE task_id = ANY($1::text[])", task_ids)
    return {r["task_id"]: r["owner"] for r in rows}


async def holder_host(db: Database, task_id: str) -> str | None:
    """The host of the conductor holding (or that last held) the task's lease."""
    async with db.system(kind="read") as conn:
        host: str | None = await conn.fetchval(
            "SELECT c.host FROM fleet_leases l JOIN fleet_conductors c ON c.id = l.owner WHERE l.task_id = $1",
            task_id)
        return host
