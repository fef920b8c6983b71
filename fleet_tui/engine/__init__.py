"""The conductor and everything it drives: saga, governor, monitor, routing, enrichment, review.

What the faces may type against: FleetFace (engine/ports.py), which the Conductor, the
Observer and the tests' seeded fleet all satisfy."""

from fleet_tui.engine.ports import FleetFace

__all__ = ["FleetFace"]
