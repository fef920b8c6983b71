"""Several processes creating and rotating keys in one directory at once: the fcntl lock
keeps every rotation (no lost update) and leaves exactly one signing key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fleet_tui.engine.kit.keys import KeyStore

WORKER = """
import sys
from pathlib import Path
from fleet_tui.engine.kit.keys import KeyStore
store = KeyStore(Path(sys.argv[1]))
store.current()
for _ in range(int(sys.argv[2])):
    store.rotate()
"""


def test_concurrent_first_use_and_rotations_lose_nothing(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    workers, rotations = 4, 5
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(directory), str(rotations)])
             for _ in range(workers)]
    assert [p.wait(timeout=120) for p in procs] == [0] * workers

    entries = json.loads((directory / "index.json").read_text())["keys"]
    # One key made on first use (never one per process), plus every single rotation.
    assert len(entries) == 1 + workers * rotations
    assert len({e["kid"] for e in entries}) == len(entries)
    assert sum(e["retired_at"] is None for e in entries) == 1
    assert sorted(p.stem for p in directory.glob("*.pem")) == sorted(e["kid"] for e in entries)
    assert len(KeyStore(directory).jwks()["keys"]) == len(entries)
    assert not list(directory.glob(".*.tmp"))  # no temp files left behind
