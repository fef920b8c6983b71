"""The fleet invariants, checkable on demand. Each check returns satisfied + detail."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from fleet_tui.domain.models import RuntimeKind, Tier
from fleet_tui.store import invariants as queries

if TYPE_CHECKING:
    from fleet_tui.engine.conductor import Conductor


@dataclass(frozen=True)
class InvariantResult:
    id: str
    name: str
    satisfied: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def check_all(c: Conductor) -> list[InvariantResult]:
    return [await inv_014(c), await inv_015(c), await inv_016(c), await inv_017(c), await inv_018(c)]


async def inv_014(c: Conductor) -> InvariantResult:
    over = [f"{r['operator_id']} ({r['tier']}) has {r['live']} live, limit {c.governor.limit_for(Tier(r['tier']))}"
            for r in await queries.live_counts(c.parts.db)
            if r["live"] > c.governor.limit_for(Tier(r["tier"]))]
    return InvariantResult("INV-014", "live tasks never exceed the tier limit", not over,
                           "; ".join(over) or "every operator within its limit")


async def inv_015(c: Conductor) -> InvariantResult:
    """Every agent process belongs to a task row that was moved to spawning first."""
    process_ids: list[str] = []
    unreachable: list[str] = []
    # tmux, and the runtimes this conductor has used: a Docker engine may be shared by
    # fleets on other databases, whose containers are not ours to judge
    for kind in {RuntimeKind.TMUX, *c.parts._runtimes}:
        try:
            process_ids.extend((await c.runtime_for(kind).states()).keys())
        except Exception:  # e.g. no docker engine here: nothing of ours can run there
            unreachable.append(str(kind))
    spawned = await queries.tasks_spawned(c.parts.db, process_ids)
    orphans = sorted(set(process_ids) - spawned)
    return InvariantResult("INV-015", "a task row exists before its agent process", not orphans,
                           f"processes without a spawned task: {', '.join(orphans)}" if orphans
                           else f"{len(process_ids)} processes, all with a task row"
                           + (f" ({', '.join(unreachable)} not reachable)" if unreachable else ""))


async def inv_016(c: Conductor) -> InvariantResult:
    missing = await queries.terminal_without_audit(c.parts.db)
    return InvariantResult("INV-016", "every terminal task has an audit trail", not missing,
                           f"terminal tasks without audit: {', '.join(missing)}" if missing else "all audited")


async def inv_017(c: Conductor) -> InvariantResult:
    over = await queries.over_retry_budget(c.parts.db)
    return InvariantResult("INV-017", "retry_count <= max_retries", not over,
                           f"over budget: {', '.join(over)}" if over else "all within budget")


async def inv_018(c: Conductor) -> InvariantResult:
    missing = await queries.terminal_without_notification(c.parts.db)
    return InvariantResult("INV-018", "every terminal status produced a notification", not missing,
                           f"terminal tasks without notification: {', '.join(missing)}" if missing
                           else "all notified")
