"""The fleet invariants, checkable on demand. Each check returns satisfied + detail."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from collections.abc import Callable, Iterable
from typing import Any

from fleet_tui.domain.models import RuntimeKind, Tier
from fleet_tui.infra.protocols import Runtime
from fleet_tui.store import invariants as queries
from fleet_tui.store.db import Database


@dataclass(frozen=True)
class InvariantResult:
    id: str
    name: str
    satisfied: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def check_all(*, db: Database, limit_for: Callable[[Tier], int],
                    runtime_for: Callable[[RuntimeKind], Runtime], runtimes: Iterable[RuntimeKind]) -> list[InvariantResult]:
    """`runtimes`: the kinds whose processes are ours to judge (see inv_015)."""
    return [await inv_014(db, limit_for), await inv_015(db, runtime_for, runtimes), await inv_016(db),
            await inv_017(db), await inv_018(db)]


async def inv_014(db: Database, limit_for: Callable[[Tier], int]) -> InvariantResult:
    over = [f"{r['operator_id']} ({r['tier']}) has {r['live']} live, limit {limit_for(Tier(r['tier']))}"
            for r in await queries.live_counts(db)
            if r["live"] > limit_for(Tier(r["tier"]))]
    return InvariantResult("INV-014", "live tasks never exceed the tier limit", not over,
                           "; ".join(over) or "every operator within its limit")


async def inv_015(db: Database, runtime_for: Callable[[RuntimeKind], Runtime],
                  runtimes: Iterable[RuntimeKind]) -> InvariantResult:
    """Every agent process belongs to a task row that was moved to spawning first."""
    process_ids: list[str] = []
    unreachable: list[str] = []
    # tmux, and the runtimes this conductor has used: a Docker engine may be shared by
    # fleets on other databases, whose containers are not ours to judge
    for kind in runtimes:
        try:
            process_ids.extend((await runtime_for(kind).states()).keys())
        except Exception:  # e.g. no docker engine here: nothing of ours can run there
            unreachable.append(str(kind))
    spawned = await queries.tasks_spawned(db, process_ids)
    orphans = sorted(set(process_ids) - spawned)
    return InvariantResult("INV-015", "a task row exists before its agent process", not orphans,
                           f"processes without a spawned task: {', '.join(orphans)}" if orphans
                           else f"{len(process_ids)} processes, all with a task row"
                           + (f" ({', '.join(unreachable)} not reachable)" if unreachable else ""))


async def inv_016(db: Database) -> InvariantResult:
    missing = await queries.terminal_without_audit(db)
    return InvariantResult("INV-016", "every terminal task has an audit trail", not missing,
                           f"terminal tasks without audit: {', '.join(missing)}" if missing else "all audited")


async def inv_017(db: Database) -> InvariantResult:
    over = await queries.over_retry_budget(db)
    return InvariantResult("INV-017", "retry_count <= max_retries", not over,
                           f"over budget: {', '.join(over)}" if over else "all within budget")


async def inv_018(db: Database) -> InvariantResult:
    missing = await queries.terminal_without_notification(db)
    return InvariantResult("INV-018", "every terminal status produced a notification", not missing,
                           f"terminal tasks without notification: {', '.join(missing)}" if missing
                           else "all notified")
