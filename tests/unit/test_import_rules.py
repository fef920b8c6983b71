"""The rooms' dependency rules, checked on the source (AST) and on a real import."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "fleet_tui"

# room -> rooms it may import (besides itself); `config`, `extras` (which optional part
# needs which packages) and `assets` (where sql/ and styles/ are) are leaves every room
# outside domain may use
LEAVES = {"config", "extras", "assets"}
ALLOWED = {
    "domain": set(),
    "store": {"domain"} | LEAVES,
    "infra": {"domain"} | LEAVES,
    "engine": {"domain", "store", "infra"} | LEAVES,
    "api": {"domain", "engine"} | LEAVES,
    "ui": {"domain", "engine"} | LEAVES,
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
                                    "fleet_tui.engine.watch.monitor"])
def test_importing_lower_floors_pulls_in_no_ui_library(module: str) -> None:
    code = (f"import sys, {module}\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def deferred_imports(path: Path) -> set[tuple[str, tuple[str, ...]]]:
    """(module, names) of each import inside a function: made on first use, not at import."""
    found: set[tuple[str, tuple[str, ...]]] = set()
    for function in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.Import):
                found.update((alias.name, ()) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add((node.module, tuple(alias.name for alias in node.names)))
    return found


# what runs inside the control room: everything but the CLI verbs and the HTTP face
IN_THE_APP = [path for room in ("domain", "store", "infra", "engine", "ui") for path in room_files(room)]


def test_the_app_imports_the_engine_with_the_real_stdout() -> None:
    """Inside a running Textual app sys.stdout is Textual's capture (no .encoding); libtmux
    reads sys.stdout.encoding at import, so a first spawn from the control room died of
    it. The app imports the engine (import_engine) with the process's own stdout, after its
    first frame and before it opens the engine: every import the engine defers to first use
    must be among what that brings in."""
    deferred = sorted({item for path in IN_THE_APP for item in deferred_imports(path)})
    code = (
        "import importlib.util, json, sys\n"
        "from fleet_tui.engine.session import import_engine\n"
        "import_engine()\n"
        "import fleet_tui.ui.app\n"
        "missing = []\n"
        "for module, names in json.loads(sys.argv[1]):\n"
        "    wanted = [module]\n"
        "    for name in names:\n"
        "        try:\n"
        "            if importlib.util.find_spec(f'{module}.{name}') is not None:\n"
        "                wanted.append(f'{module}.{name}')\n"
        "        except ModuleNotFoundError:\n"
        "            pass\n"
        "    missing += [m for m in wanted if m not in sys.modules]\n"
        "print(json.dumps(sorted(set(missing))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, json.dumps(deferred)], capture_output=True, text=True,
                         check=True)
    assert json.loads(out.stdout) == []
    assert any(module == "fleet_tui.infra.tmux_runtime" for module, _ in deferred)  # the check sees them


def modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_the_control_room_paints_before_it_imports_the_engine() -> None:
    """What `fleet-tui` (no verb) loads before its first frame: no verb modules and no
    engine beyond the bus (those were most of a 2 s first frame); they load after it."""
    loaded = modules_after(
        "from fleet_tui import cli\n"
        "args = cli.parse_args([])\n"
        "from fleet_tui.config import load_settings\n"
        "from fleet_tui.ui.app import make_app\n"
        "make_app(load_settings(database={'url': 'postgresql://u@h/db'}))\n")
    assert not {m for m in loaded if m.startswith("fleet_tui.commands.")}
    assert not {m for m in loaded if m.startswith(("fleet_tui.store", "fleet_tui.infra"))}
    # ports: the faces' FleetFace, Protocols only over what is loaded already (config, models, bus)
    assert {m for m in loaded if m.startswith("fleet_tui.engine.")} <= {
        "fleet_tui.engine.kit", "fleet_tui.engine.kit.bus", "fleet_tui.engine.ledger",
        "fleet_tui.engine.ledger.tracing", "fleet_tui.engine.ports"}
    assert not {"libtmux", "docker", "httpx", "cryptography"} & {m.split(".")[0] for m in loaded}


def test_a_verb_or_help_still_loads_the_verbs() -> None:
    from fleet_tui import cli

    assert cli.parse_args(["status", "--json"]).command == "status"
    assert cli.parse_args(["--attach", "postgresql://u@h/db"]).attach == "postgresql://u@h/db"
    with pytest.raises(SystemExit) as exc:
        cli.parse_args(["--no-such-flag"])
    assert exc.value.code == 2
