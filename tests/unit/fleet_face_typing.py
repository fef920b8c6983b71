"""Checked by mypy (test_fleet_face.py runs it): each fleet stands where a FleetFace is asked,
the conductor where the command line's admin verbs ask a FleetAdmin too, and the app where its
screens ask a ControlRoom."""

from __future__ import annotations

from fleet_tui.engine.conductor import Conductor
from fleet_tui.engine.fleet_admin import AdministeredFleet
from fleet_tui.engine.observer.observer import Observer
from fleet_tui.engine.ports import FleetFace
from fleet_tui.ui.app import FleetApp
from fleet_tui.ui.room import ControlRoom
from tests.ui.seeded import SeededConductor


def the_conductor(fleet: Conductor) -> FleetFace:
    return fleet


def the_observer(fleet: Observer) -> FleetFace:
    return fleet


def the_seeded_fleet(fleet: SeededConductor) -> FleetFace:
    return fleet


def the_conductor_administered(fleet: Conductor) -> AdministeredFleet:
    return fleet


def the_control_room(app: FleetApp) -> ControlRoom:
    return app
