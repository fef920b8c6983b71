"""docs/invariants.json names, for each invariant, code and tests that really exist."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INVARIANTS = json.loads((ROOT / "docs" / "invariants.json").read_text())


def defined_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            if isinstance(node, ast.ClassDef):
                names.update(f"{node.name}.{item.name}" for item in node.body
                             if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)))
    return names


def assert_reference(ref: str) -> None:
    file, _, symbol = ref.partition("::")
    path = ROOT / file
    assert path.is_file(), f"{ref}: no file {file}"
    if not symbol:
        return
    if path.suffix == ".sql":
        assert symbol in path.read_text(), f"{ref}: {symbol} not in {file}"
    else:
        assert symbol in defined_names(path), f"{ref}: {symbol} not defined in {file}"


def test_every_invariant_from_014_to_018_is_listed() -> None:
    assert sorted(INVARIANTS) == ["INV-014", "INV-015", "INV-016", "INV-017", "INV-018"]


@pytest.mark.parametrize("inv", sorted(INVARIANTS))
def test_references_exist(inv: str) -> None:
    entry = INVARIANTS[inv]
    assert entry["statement"] and entry["tests"] and entry["enforced_by"]
    for ref in [*entry["enforced_by"], entry["checked_by"], *entry["tests"]]:
        assert_reference(ref)
