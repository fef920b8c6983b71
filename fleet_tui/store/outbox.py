"""fleet_outbox: events written in the same transaction as the change they announce, and
the queries the relay and the faces read them with.

Order. Rows are read in (txid, id) order and only below the snapshot horizon
pg_snapshot_xmin(pg_current_snapshot()): every transaction with a smaller id has ended,
so no row can later appear behind a reader. Serial ids alone are not enough: a
transaction that took id 5 may commit after the one that took id 6, and a cursor at 6
would skip 5 for ever. The price: one long-open transaction holds readers back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from collections.abc import Iterable, Sequence

import asyncpg

Cursor = tuple[int, int]  # (txid, id): everything at or before it has been seen
NOTIFY_PAYLOAD_MAX = 7_900  # PostgreSQL refuses NOTIFY payloads of 8000 bytes or more
HORIZON = "pg_snapshot_xmin(pg_current_snapshot())"
HELD_RETRY_S = (0.02, 0.05, 0.1, 0.2, 0.5)  # looks again at rows held back by an open transaction
_COLUMNS = (
    "id, event_id::text AS event_id, event_type, task_id, operator_id, payload,"
    " txid::text::bigint AS txid, created_at, attempts_started, attempts_finished, delivered_to"
)


@dataclass(frozen=True)
class OutboxRow:
    id: int
    event_id: str
    event_type: str
    task_id: str | None
    operator_id: str
    payload: dict[str, Any]
    txid: int
    created_at: datetime
    attempts_started: int = 0
    attempts_finished: int = 0
    delivered_to: tuple[str, ...] = ()

    @property
    def cursor(self) -> Cursor:
        return (self.txid, self.id)

    def envelope(self) -> dict[str, Any]:
        """The wire form every sink and face receives; receivers dedupe on event_id."""
        return {
            "id": self.id,
            "event_id": self.event_id,
            "type": self.event_type,
            "task_id": self.task_id,
            "operator_id": self.operator_id,
            "payload": self.payload,
            "txid": self.txid,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class Settlement:
    """How one claimed row's delivery ended: error None = every sink took it."""

    id: int
    delivered_to: Sequence[str] = ()
    error: str | None = None
    retry_in_s: float = 0.0
    park: bool = False


@dataclass(frozen=True)
class OutboxStats:
    pending: int
    parked: int
    oldest_pending_s: float | None
    extra: dict[str, Any] = field(default_factory=dict)


def _row(r: asyncpg.Record) -> OutboxRow:
    return OutboxRow(
        id=r["id"], event_id=r["event_id"], event_type=r["event_type"], task_id=r["task_id"],
        operator_id=r["operator_id"], payload=r["payload"], txid=r["txid"], created_at=r["created_at"],
        attempts_started=r["attempts_started"], attempts_finished=r["attempts_finished"],
        delivered_to=tuple(r["delivered_to"] or ()),
    )


async def enqueue(
    conn: asyncpg.Connection,
    event_type: str,
    payload: dict[str, Any],
    *,
    task_id: str | None,
    operator_id: str,
    dedup_key: str | None = None,
) -> int | None:
    """Add an event inside the caller's transaction. A repeated dedup_key is a no-op
    (returns None), so a retried writer never announces the same change twice."""
    event_id: int | None = await conn.fetchval(
        "INSERT INTO fleet_outbox (event_type, payload, task_id, operator_id, dedup_key)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
        event_type, payload, task_id, operator_id, dedup_key,
    )
    return event_id


# --- the relay ------------------------------------------------------------------------------

async def park_crashers(conn: asyncpg.Connection, *, crash_limit: int) -> list[OutboxRow]:
    """Rows whose delivery started crash_limit times without ever finishing (each start
    killed the relay, or its lease ran out): stop retrying them. Returns them so the caller
    can hand them to the dead-letter queue."""
    rows = await conn.fetch(
        f"WITH doomed AS (SELECT id FROM fleet_outbox"
        f"   WHERE processed_at IS NULL AND parked_at IS NULL"
        f"   AND attempts_started - attempts_finished >= $1"
        f"   AND (claimed_until IS NULL OR claimed_until < now())"
        f"   FOR UPDATE SKIP LOCKED)"
        f" UPDATE fleet_outbox o SET parked_at = now(), claimed_by = NULL, claimed_until = NULL,"
        f"   last_error = 'delivery started ' || o.attempts_started || ' times without finishing'"
        f" FROM doomed WHERE o.id = doomed.id RETURNING {_qualified('o')}",
        crash_limit)
    return sorted((_row(r) for r in rows), key=lambda row: row.cursor)


async def claim(conn: asyncpg.Connection, relay_id: str, *, limit: int, lease_s: float,
                suspects: bool = False) -> list[OutboxRow]:
    """Lease up to `limit` due rows below the horizon, oldest commit first, counting one
    started attempt each (committed with the claim, before any delivery, so a relay killed
    mid-delivery leaves the count behind). Rows leased by a live relay are skipped.
    suspects=True claims only rows with an unfinished attempt (their last holder died),
    which the relay retries one at a time."""
    crashed = "attempts_started > attempts_finished" if suspects else "attempts_started = attempts_finished"
    rows = await conn.fetch(
        f"WITH picked AS (SELECT id FROM fleet_outbox"
        f"   WHERE processed_at IS NULL AND parked_at IS NULL AND txid < {HORIZON} AND {crashed}"
        f"   AND (claimed_until IS NULL OR claimed_until < now())"
        f"   AND (next_attempt_at IS NULL OR next_attempt_at <= now())"
        f"   ORDER BY txid, id LIMIT $2 FOR UPDATE SKIP LOCKED)"
        f" UPDATE fleet_outbox o SET attempts_started = o.attempts_started + 1, claimed_by = $1,"
        f"   claimed_until = now() + make_interval(secs => $3)"
        f" FROM picked WHERE o.id = picked.id RETURNING {_qualified('o')}",
        relay_id, limit, float(lease_s))
    return sorted((_row(r) for r in rows), key=lambda row: row.cursor)


async def settle(conn: asyncpg.Connection, relay_id: str, results: Iterable[Settlement]) -> set[int]:
    """Record how each claimed row's delivery ended, in one statement. Only rows this relay
    still holds change (a row whose lease ran out belongs to whoever took it over).
    Returns the ids settled."""
    results = list(results)
    if not results:
        return set()
    rows = await conn.fetch(
        "UPDATE fleet_outbox o SET attempts_finished = o.attempts_finished + 1,"
        "  claimed_by = NULL, claimed_until = NULL,"
        "  delivered_to = ARRAY(SELECT DISTINCT s FROM unnest(o.delivered_to"
        "    || string_to_array(u.done, ',')) AS s ORDER BY s),"
        "  processed_at = CASE WHEN u.err IS NULL THEN now() END,"
        "  last_error = u.err,"
        "  next_attempt_at = CASE WHEN u.err IS NULL THEN NULL ELSE now() + make_interval(secs => u.delay) END,"
        "  parked_at = CASE WHEN u.park THEN now() END"
        " FROM unnest($2::bigint[], $3::text[], $4::text[], $5::float8[], $6::bool[])"
        "   AS u(id, done, err, delay, park)"
        " WHERE o.id = u.id AND o.claimed_by = $1 RETURNING o.id",
        relay_id,
        [r.id for r in results], [",".join(r.delivered_to) for r in results],
        [r.error for r in results], [float(r.retry_in_s) for r in results], [r.park for r in results])
    return {r["id"] for r in rows}


async def release(conn: asyncpg.Connection, relay_id: str, ids: Sequence[int]) -> None:
    """Give back leases without counting an attempt (a relay stopping cleanly mid-batch)."""
    await conn.execute(
        "UPDATE fleet_outbox SET claimed_by = NULL, claimed_until = NULL,"
        " attempts_started = greatest(attempts_started - 1, attempts_finished)"
        " WHERE id = ANY($2::bigint[]) AND claimed_by = $1", relay_id, list(ids))


async def notify(conn: asyncpg.Connection, channel: str, ids: Sequence[int]) -> int:
    """NOTIFY `channel` with the outbox ids only, split so each payload stays under the
    8000-byte limit. Delivered when the caller's transaction commits. Returns the count."""
    chunks = notify_payloads(ids)
    for payload in chunks:
        await conn.execute("SELECT pg_notify($1, $2)", channel, payload)
    return len(chunks)


def notify_payloads(ids: Sequence[int], limit: int = NOTIFY_PAYLOAD_MAX) -> list[str]:
    """Comma-separated ids, as few payloads as fit under `limit` bytes each."""
    payloads: list[str] = []
    current = ""
    for text in (str(i) for i in ids):
        candidate = f"{current},{text}" if current else text
        if len(candidate) > limit:
            payloads.append(current)
            candidate = text
        current = candidate
    if current:
        payloads.append(current)
    return payloads


async def held_back(conn: asyncpg.Connection) -> bool:
    """Committed rows still waiting above the horizon: an older transaction, somewhere on
    the server, is open. They become readable the moment it ends, and no NOTIFY says so."""
    held: bool = await conn.fetchval(
        f"SELECT EXISTS (SELECT 1 FROM fleet_outbox WHERE processed_at IS NULL AND parked_at IS NULL"
        f" AND txid >= {HORIZON})")
    return held


def next_look_s(held_rounds: int, poll_s: float) -> float:
    """How long a reader waits before looking again, after `held_rounds` looks in a row
    that found rows held back (0: none; a NOTIFY or the poll wakes it). Soon at first: most
    open transactions last milliseconds; never longer than HELD_RETRY_S[-1] while rows wait,
    since the transaction's end sends no NOTIFY."""
    if held_rounds <= 0:
        return poll_s
    return min(HELD_RETRY_S[min(held_rounds, len(HELD_RETRY_S)) - 1], poll_s)


async def due_count(conn: asyncpg.Connection) -> int:
    """Committed rows a relay could claim now if the horizon allowed."""
    due: int = await conn.fetchval(
        "SELECT count(*) FROM fleet_outbox WHERE processed_at IS NULL AND parked_at IS NULL"
        " AND (claimed_until IS NULL OR claimed_until < now())"
        " AND (next_attempt_at IS NULL OR next_attempt_at <= now())")
    return due


async def stats(conn: asyncpg.Connection) -> OutboxStats:
    row = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE processed_at IS NULL AND parked_at IS NULL) AS pending,"
        " count(*) FILTER (WHERE parked_at IS NOT NULL) AS parked,"
        " extract(epoch FROM now() - min(created_at) FILTER (WHERE processed_at IS NULL"
        "   AND parked_at IS NULL))::float8 AS oldest FROM fleet_outbox")
    return OutboxStats(pending=row["pending"], parked=row["parked"], oldest_pending_s=row["oldest"])


# --- the faces ------------------------------------------------------------------------------

async def head(conn: asyncpg.Connection) -> Cursor:
    """A cursor at 'now': everything already below the horizon counts as seen."""
    return (await conn.fetchval(f"SELECT {HORIZON}::text::bigint"), 0)


async def read_after(conn: asyncpg.Connection, after: Cursor, *, limit: int = 500) -> list[OutboxRow]:
    """Events after the cursor, in commit order, that no later commit can precede."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM fleet_outbox"
        f" WHERE (txid, id) > ($1::text::xid8, $2) AND txid < {HORIZON}"
        f" ORDER BY txid, id LIMIT $3",
        str(after[0]), after[1], limit)
    return [_row(r) for r in rows]


def _qualified(alias: str) -> str:
    return ", ".join(f"{alias}.{column.strip()}" for column in _COLUMNS.split(","))


async def connect_dedicated(url: str, *, application_name: str, timeout_s: float = 5.0) -> asyncpg.Connection:
    """A connection outside the pool, for LISTEN: a pooled connection would be handed to
    other borrowers and its LISTEN state with it."""
    from fleet_tui.store.db import _init_connection

    conn = await asyncpg.connect(url, timeout=timeout_s,
                                 server_settings={"application_name": application_name})
    await _init_connection(conn)
    return conn


async def read_after_as(conn: asyncpg.Connection, after: Cursor | None, *, operator_id: str,
                        is_admin: bool, limit: int = 500) -> tuple[Cursor, list[OutboxRow], bool]:
    """read_after in a tenant transaction on a dedicated connection (row-level security
    decides what this face sees). A None cursor starts at head. Returns (cursor, rows,
    held): held when more of this face's events are committed but still above the horizon."""
    async with conn.transaction(isolation="read_committed", readonly=True):
        await conn.execute("SELECT set_config('app.operator_id', $1, true), set_config('app.is_admin', $2, true)",
                           operator_id, "true" if is_admin else "false")
        if after is None:
            return await head(conn), [], False
        rows = await read_after(conn, after, limit=limit)
        held = len(rows) < limit and await held_back(conn)
    return (rows[-1].cursor if rows else after), rows, held
