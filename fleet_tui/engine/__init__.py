"""The conductor and everything it drives: saga, governor, monitor, routing, enrichment, review.

What the faces type against: FleetFace (engine/ports.py), which the Conductor, the Observer
and the tests' seeded fleet all satisfy. Exported lazily: this package is imported with any
of its modules (the control room's first frame imports kit.bus), and ports reaches infra."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fleet_tui.engine.ports import FleetFace

__all__ = ["FleetFace"]


def __getattr__(name: str) -> Any:
    if name == "FleetFace":
        from fleet_tui.engine.ports import FleetFace

        return FleetFace
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
