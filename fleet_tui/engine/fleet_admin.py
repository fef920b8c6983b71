"""FleetAdmin: the administration verbs of a fleet run in this process (dead letters, routes
and breakers, preferences, the disk sweep, the invariants), which the command line's admin
verbs use beside FleetFace. The Conductor satisfies it; an Observer does not (those verbs
open a conductor). A module of its own rather than ports.py: its results are the events and
ops rooms' types, and ports.py is imported by those rooms (no import circle, not even for
type checking)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from fleet_tui.domain.models import Operator
from fleet_tui.engine.ports import FleetFace

if TYPE_CHECKING:  # results only: the verbs that use them load these rooms when they run
    from fleet_tui.engine.events.runner import RunResult
    from fleet_tui.engine.ops.invariants import InvariantResult
    from fleet_tui.engine.ops.sweep import SweepReport


class FleetAdmin(Protocol):
    # --- dead letters (`dlq`) -------------------------------------------------------------
    async def dead_letters(self, operator: Operator, *, include_closed: bool = False) -> list[dict[str, Any]]: ...

    async def retry_dead_letter(self, operator: Operator, letter_id: int) -> RunResult: ...

    async def discard_dead_letter(self, operator: Operator, letter_id: int) -> None: ...

    # --- the event router's policy and breakers (`routes`) -----------------------------------
    async def routes(self, operator: Operator, kind: str) -> list[dict[str, Any]]: ...

    async def route(self, operator: Operator, kind: str, key: str) -> dict[str, Any]: ...

    async def save_route(self, operator: Operator, kind: str, item: dict[str, Any], *,
                         platform: bool = False) -> dict[str, Any]: ...

    async def delete_route(self, operator: Operator, kind: str, key: str, *, platform: bool = False) -> None: ...

    async def breaker_states(self) -> list[dict[str, Any]]: ...

    # --- the operator's preferences (`prefs`) ----------------------------------------------
    async def preferences(self, operator: Operator) -> dict[str, bool | None]: ...

    async def set_preference(self, operator: Operator, key: str, value: bool | None) -> None: ...

    # --- operations (`sweep`, `invariants`) ------------------------------------------------
    async def sweep(self) -> SweepReport: ...

    async def invariants(self) -> list[InvariantResult]: ...


class AdministeredFleet(FleetFace, FleetAdmin, Protocol):
    """A fleet the command line opens here: what every face asks of a fleet, and its
    administration."""
