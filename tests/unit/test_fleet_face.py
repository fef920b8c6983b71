"""The faces' one contract with the engine: FleetFace (engine/ports.py). The Conductor, the
Observer and the tests' seeded fleet each have every member with a signature the protocol
accepts, and the faces (ui, api, commands) never ask getattr of the fleet nor hold it as Any."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
import typing
from pathlib import Path

import pytest

import fleet_tui
from fleet_tui.engine import FleetFace
from fleet_tui.engine.conductor import Conductor
from fleet_tui.engine.observer.observer import Observer
from tests.ui.seeded import SeededConductor

PACKAGE = Path(fleet_tui.__file__).parent
FACES = ("ui", "api", "commands")
FLEET_NAMES = {"conductor", "fleet", "observer", "opened", "c"}  # what faces call the fleet


def protocol_members() -> dict[str, object]:
    members = {name: value for name, value in vars(FleetFace).items()
               if not name.startswith("_") and (callable(value) or isinstance(value, property))}
    assert {"spawn", "stop", "retry", "answer", "status", "follow_logs", "change_feed", "monitor",
            "governor", "attach_elsewhere", "output_host", "spawn_field_errors", "fleet_health"} <= set(members)
    return members


def accepts(protocol: inspect.Signature, impl: inspect.Signature) -> str | None:
    """Why impl cannot stand where protocol is called, or None: every parameter the protocol
    has, of the same name and kind (a default where it has one); any extra has a default."""
    have = impl.parameters
    for name, param in protocol.parameters.items():
        mine = have.get(name)
        if mine is None or mine.kind != param.kind:
            return f"parameter {name} missing or of another kind"
        if param.default is not param.empty and mine.default != param.default:
            return f"parameter {name} defaults to {mine.default!r}, the protocol to {param.default!r}"
    extra = [n for n, p in have.items() if n not in protocol.parameters
             and p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return f"extra required parameters {extra}" if extra else None


@pytest.mark.parametrize("fleet", [Conductor, Observer, SeededConductor], ids=lambda c: c.__name__)
def test_every_fleet_satisfies_the_protocol(fleet: type) -> None:
    init = inspect.getsource(fleet.__init__)
    wrong = []
    for name, member in protocol_members().items():
        if isinstance(member, property):  # a plain attribute serves: set in __init__
            if f"self.{name} =" not in init and f"self.{name}:" not in init and not hasattr(fleet, name):
                wrong.append(f"{name}: not set")
            continue
        impl = getattr(fleet, name, None)
        if impl is None or not callable(impl):
            wrong.append(f"{name}: missing")
            continue
        if inspect.iscoroutinefunction(member) != inspect.iscoroutinefunction(impl):
            wrong.append(f"{name}: {'not ' if inspect.iscoroutinefunction(member) else ''}async")
        if typing.get_type_hints(member).get("return") == typing.AsyncIterator[str] \
                and not inspect.isasyncgenfunction(impl):
            wrong.append(f"{name}: not an async iterator")
        why = accepts(inspect.signature(member), inspect.signature(impl))
        if why:
            wrong.append(f"{name}: {why}")
    assert not wrong, f"{fleet.__name__} does not satisfy FleetFace: {wrong}"


def test_mypy_accepts_every_fleet_as_a_fleet_face(tmp_path: Path) -> None:
    """The same, by the type checker: fleet_face_typing.py returns each fleet as a FleetFace."""
    typing_module = Path(__file__).with_name("fleet_face_typing.py")
    checked = subprocess.run([sys.executable, "-m", "mypy", "--follow-imports=silent", "--cache-dir",
                              str(tmp_path / "mypy"), str(typing_module)],
                             capture_output=True, text=True, timeout=300, cwd=PACKAGE.parent)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "no issues found in 1 source file" in checked.stdout


def test_the_check_catches_a_fleet_that_lacks_a_member() -> None:
    class Lacking(SeededConductor):
        answer = None  # type: ignore[assignment]

        async def retry(self, operator, task_id):  # type: ignore[no-untyped-def, override]
            return None

    with pytest.raises(AssertionError) as refused:
        test_every_fleet_satisfies_the_protocol(Lacking)
    assert "answer: missing" in str(refused.value) and "retry: parameter allow" in str(refused.value)


def fleet_name(node: ast.expr) -> str | None:
    name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
    return name if name in FLEET_NAMES else None


def is_any(annotation: ast.expr | None) -> bool:
    """Any, Any | None, or either as a string."""
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        annotation = ast.parse(annotation.value, mode="eval").body
    if isinstance(annotation, ast.BinOp):
        return is_any(annotation.left) or is_any(annotation.right)
    return isinstance(annotation, ast.Name) and annotation.id == "Any"


def any_typed(scope: ast.AST) -> set[str]:
    """Names a scope holds as Any: its parameters and annotated assignments (`app: Any = self.app`)."""
    names = set()
    for node in ast.walk(scope):
        if isinstance(node, ast.AnnAssign) and is_any(node.annotation):
            target = node.target
            names.add(target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", ""))
        if isinstance(node, ast.arg) and is_any(node.annotation):
            names.add(node.arg)
    return names


def face_violations(source: str, where: str) -> list[str]:
    tree = ast.parse(source)
    found = [f"{where}: {name} held as Any" for name in sorted(any_typed(tree) & FLEET_NAMES)]
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr")
                and node.args and fleet_name(node.args[0])):
            found.append(f"{where}:{node.lineno}: {node.func.id} on the fleet")
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            held = any_typed(node)
            found += [f"{where}:{inner.lineno}: the fleet reached through {inner.value.id}, held as Any"
                      for inner in ast.walk(node)
                      if isinstance(inner, ast.Attribute) and inner.attr in ("conductor", "fleet")
                      and isinstance(inner.value, ast.Name) and inner.value.id in held]
    return found


def test_the_faces_ask_no_getattr_of_the_fleet_and_hold_it_typed() -> None:
    found = []
    for face in FACES:
        for path in sorted((PACKAGE / face).rglob("*.py")):
            found += face_violations(path.read_text(), str(path.relative_to(PACKAGE)))
    assert not found, "\n".join(found)


def test_the_face_check_sees_what_was_there_before() -> None:
    before = '''
def engine_health(self):
    monitor = getattr(self.conductor, "monitor", None)

async def _spawn(self, request):
    app: Any = self.app
    await app.conductor.spawn(app.operator, request)

def create_app(conductor: Any = None): ...
'''
    found = face_violations(before, "old.py")
    assert len(found) == 3, found
    assert {"old.py: conductor held as Any", "old.py:3: getattr on the fleet",
            "old.py:7: the fleet reached through app, held as Any"} == set(found)
