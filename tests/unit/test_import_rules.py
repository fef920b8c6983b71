"""The rooms' dependency rules, checked on the source (AST) and on a real import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "fleet_tui"

# room -> rooms it may import (besides itself)
ALLOWED = {
    "domain": set(),
    "store": {"domain", "config"},
    "infra": {"domain", "config"},
    "engine": {"domain", "config", "store", "infra"},
    "api": {"domain", "config", "engine"},
    "ui": {"domain", "config", "engine"},
}
UI_LIBRARIES = {"textual", "rich"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def room_files(room: str) -> list[Path]:
    return sorted((PACKAGE / room).rglob("*.py"))


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_room_imports_only_what_it_may(room: str) -> None:
    offences = []
    for path in room_files(room):
        for name in imported_modules(path):
            parts = name.split(".")
            if parts[0] in UI_LIBRARIES and room != "ui":
                offences.append(f"{path.relative_to(PACKAGE)} imports {name}")
            if parts[0] != "fleet_tui" or len(parts) < 2:
                continue
            target = parts[1]
            if target != room and target not in ALLOWED[room]:
                offences.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert offences == []


def test_rule_checker_sees_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from fleet_tui.store.db import Database\nimport textual.app\n")
    assert {"fleet_tui.store.db", "textual.app"} <= imported_modules(bad)


@pytest.mark.parametrize("module", ["fleet_tui.domain", "fleet_tui.store.db", "fleet_tui.store.tasks",
                                    "fleet_tui.engine.conductor", "fleet_tui.engine.session",
                                    "fleet_tui.engine.monitor"])
def test_importing_lower_floors_pulls_in_no_ui_library(module: str) -> None:
    code = (f"import sys, {module}\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
