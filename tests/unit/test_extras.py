"""The extras of pyproject.toml name parts of the full product: each one's requirements are
base requirements, written the same (so `pip install fleet-tui[server]` never pins otherwise
than the plain install), and each is the one fleet_tui/extras.py names when its part is used
without them."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from fleet_tui.extras import EXTRAS, MissingExtraError, require

PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
PARTS = {name: reqs for name, reqs in PYPROJECT["project"]["optional-dependencies"].items() if name != "test"}


def test_every_extra_is_a_part_of_the_base_install() -> None:
    base = set(PYPROJECT["project"]["dependencies"])
    assert set(PARTS) == set(EXTRAS)
    for name, requirements in PARTS.items():
        assert set(requirements) <= base, f"[{name}] differs from the base requirements"


def test_a_missing_module_names_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(EXTRAS, "nats", ("the NATS event sink", ("fleet_tui_no_such_module",)))
    with pytest.raises(MissingExtraError) as caught:
        require("nats")
    assert str(caught.value) == ("the NATS event sink needs the 'nats' extra (fleet_tui_no_such_module is not "
                                 "installed): pip install 'fleet-tui[nats]'")
    assert isinstance(caught.value, ImportError)
