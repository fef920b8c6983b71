"""The migrations (sql/) and stylesheets (styles/) live once, at the repository's top level;
the wheel carries them inside the package. Built and installed into a fresh venv, fleet_tui
finds both with its own lookup, and the migration loader reads every migration from there."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from fleet_tui.assets import asset_dir

ROOT = Path(__file__).resolve().parents[2]

# Run in the fresh venv, isolated (-I: no cwd, no PYTHONPATH on sys.path), so fleet_tui can
# only come from the installed wheel.
PROBE = """
import json, sys
import fleet_tui
from fleet_tui.assets import asset_dir
from fleet_tui.store.migrations import load_migrations
print(json.dumps({
    "package": fleet_tui.__file__,
    "sql": str(asset_dir("sql")),
    "styles_dir": str(asset_dir("styles")),
    "styles": sorted(p.name for p in asset_dir("styles").iterdir()),
    "migrations": [m.version for m in load_migrations()],
}))
"""


def find_uv() -> str:
    """uv: beside this interpreter (scripts/dev puts it in .venv), else the repository's
    .venv (a .venv-X.Y is made by that one), else on PATH."""
    for candidate in (Path(sys.executable).parent / "uv", ROOT / ".venv" / "bin" / "uv"):
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("uv")
    assert found, "no uv to build the wheel with (scripts/dev installs it into .venv)"
    return found


def test_the_source_tree_has_one_copy_of_each() -> None:
    assert asset_dir("sql") == ROOT / "sql" and asset_dir("styles") == ROOT / "styles"
    assert not (ROOT / "fleet_tui" / "sql").exists() and not (ROOT / "fleet_tui" / "styles").exists()


def test_an_installed_wheel_finds_its_migrations_and_stylesheets(tmp_path: Path) -> None:
    uv = find_uv()
    dist = tmp_path / "dist"
    subprocess.run([uv, "build", "--wheel", "--quiet", "--out-dir", str(dist), str(ROOT)],
                   check=True, capture_output=True, text=True, timeout=240)
    (wheel,) = dist.glob("fleet_tui-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
                   check=True, capture_output=True, text=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([uv, "pip", "install", "--quiet", "--no-deps", "--python", str(python), str(wheel)],
                   check=True, capture_output=True, text=True, timeout=120)
    # the dependencies (asyncpg for the loader's module) from this interpreter's site-packages,
    # after the fresh venv's own: a .pth there adds the directory, not the .pth files in it,
    # so this checkout's editable fleet_tui stays out
    site = Path(subprocess.run([str(python), "-I", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "deps-of-the-test.pth").write_text(sysconfig.get_path("purelib") + "\n")

    probe = subprocess.run([str(python), "-I", "-c", PROBE], cwd=tmp_path,
                           capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)

    installed = site / "fleet_tui"
    assert Path(found["package"]).parent == installed  # the wheel's, not this checkout's
    assert found["sql"] == str(installed / "sql")
    assert found["styles_dir"] == str(installed / "styles")
    assert found["styles"] == sorted(p.name for p in (ROOT / "styles").glob("*.tcss")) != []
    shipped = sorted(int(p.name[:3]) for p in (ROOT / "sql").glob("[0-9][0-9][0-9]_*.sql")
                     if not p.name.endswith(".down.sql"))
    assert found["migrations"] == shipped != []
