"""The faces (ui, api, commands) reach the engine through the Conductor's typed methods (and
session.py's builders), never through its insides: the parts bag, the router, the registry.
Import-linter cannot see an attribute, so the source's AST is read here."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "fleet_tui"
FACES = ("ui", "api", "commands")
# the conductor's insides a face would reach below the facade through
INSIDES = {"parts", "router", "registry", "supervisor", "spawner", "queue", "telemetry", "make_router",
           "make_monitor"}


def reaches(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, ast.Attribute) or node.attr not in INSIDES:
            continue
        if node.attr == "router" and isinstance(node.value, ast.Name) and node.value.id == "module":
            continue  # api/app.py: a routes module's APIRouter
        found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} .{node.attr}")
    return found


def test_no_face_reaches_below_the_conductor_facade() -> None:
    offences = [hit for face in FACES for path in sorted((PACKAGE / face).rglob("*.py")) for hit in reaches(path)]
    assert offences == []
