"""The ledger (engine/ledger/) is the only writer of task state: no other module of the
engine calls TaskRegistry's writing methods. A write made elsewhere would skip what follows
every write there (the faces' bus, the runtime's release, the terminal notification and
routes) or the lease that fences it.

Read from the source (an AST walk): a call of one of those methods on a receiver named like a
registry (`registry`, `self._registry`, `conductor.registry`, ...), on a name bound to
`TaskRegistry(...)` in the module, or on `TaskRegistry` itself."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import fleet_tui.engine
from fleet_tui.store.tasks import TaskRegistry

ENGINE = Path(fleet_tui.engine.__file__).parent
LEDGER = ENGINE / "ledger"
# every TaskRegistry method that changes a fleet_tasks row (or inserts or deletes one)
WRITERS = frozenset({"create", "transition", "update", "record_failure", "delete", "admit", "admit_and_insert"})
REGISTRY_NAME = re.compile(r"(^|_)registry$", re.IGNORECASE)


def tail_name(node: ast.expr) -> str | None:
    """`a.b.c` -> 'c', `a` -> 'a'; None for anything else (a call, a subscript)."""
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return None


def makes_registry(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and tail_name(node.func) == "TaskRegistry"


def registry_writes(source: str) -> list[tuple[int, str]]:
    """(line, 'receiver.method') of every call of a TaskRegistry writer in the source."""
    tree = ast.parse(source)
    bound = {"TaskRegistry"}  # names a TaskRegistry(...) is assigned to in this module
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None and makes_registry(node.value):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            bound.update(name for name in map(tail_name, targets) if name)
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in WRITERS:
            continue
        receiver = node.func.value
        name = tail_name(receiver)
        if makes_registry(receiver) or (name is not None and (REGISTRY_NAME.search(name) or name in bound)):
            found.append((node.lineno, f"{name or 'TaskRegistry(...)'}.{node.func.attr}"))
    return sorted(found)


def test_the_writers_named_are_the_registrys_writing_methods() -> None:
    """A writer renamed in the store would make this test blind to it."""
    for name in WRITERS:
        assert callable(getattr(TaskRegistry, name, None)), name


def test_no_module_outside_the_ledger_writes_task_state() -> None:
    offenders = [
        f"{path.relative_to(ENGINE.parent.parent)}:{line}: {call}"
        for path in sorted(ENGINE.rglob("*.py")) if LEDGER not in path.parents
        for line, call in registry_writes(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], ("task state is written only by the ledger (fleet_tui/engine/ledger/"
                             "task_ledger.py): take its methods as ports instead:\n" + "\n".join(offenders))


def test_the_ledger_is_where_the_writes_are() -> None:
    """The walk sees the writes where they are (else the test above passes blind)."""
    calls = {call for path in LEDGER.rglob("*.py") for _, call in registry_writes(path.read_text(encoding="utf-8"))}
    assert {"registry.transition", "registry.update", "registry.record_failure", "registry.delete",
            "registry.admit"} <= calls


def test_the_walk_finds_each_spelling_of_a_registry_write() -> None:
    source = """
from fleet_tui.store.tasks import TaskRegistry
store = TaskRegistry(db)
async def f(conductor, self, registry, tasks):
    await conductor.registry.transition("t", 1, "failed", operator=None)
    await self._registry.update("t", 1, operator=None, patch=p)
    await registry.record_failure("t", operator=None, context={})
    await store.delete("t", operator=None)
    await TaskRegistry(db).create(op, description="d")
    await TaskRegistry.admit(store, op, limit=1, capacity=1, key=None)
    await self.breakers.record_failure("model:x")  # a breaker's, not a task's
    fields.update(more)
    await worktrees.create(repo)
"""
    assert [call for _, call in registry_writes(source)] == [
        "registry.transition", "_registry.update", "registry.record_failure", "store.delete",
        "TaskRegistry(...).create", "TaskRegistry.admit"]
