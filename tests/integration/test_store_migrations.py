"""Migrations on fresh databases: up, down to zero, up again; the schema equals the expected
catalogue; CHECKs reject bad rows; triggers fire; two migrators never collide."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from fleet_tui.domain.errors import ValidationFailed
from fleet_tui.store import migrations
from fleet_tui.store.tasks import LIVE_SQL
from tests.integration.store_catalogue import expected_catalogue, expected_file, read_catalogue

ALL = [m.version for m in migrations.load_migrations()]
FLEET_TUI = str(Path(sys.executable).with_name("fleet-tui"))


async def catalogue_of(url: str):
    conn = await asyncpg.connect(url)
    try:
        return await read_catalogue(conn)
    finally:
        await conn.close()


def test_every_migration_has_a_down_file_and_an_expected_catalogue() -> None:
    found = migrations.load_migrations()
    assert [m.version for m in found] == sorted({m.version for m in found}) and found[0].version == 1
    for m in found:
        assert m.down_sql.strip(), f"{m.version:03d} has an empty down migration"
        assert expected_file(m).is_file(), f"write {expected_file(m).name} (see store_catalogue.py)"


async def test_upgrade_downgrade_to_zero_and_upgrade_again(fresh_database) -> None:
    url = await fresh_database()
    assert await migrations.upgrade(url) == ALL
    assert await migrations.upgrade(url) == []  # idempotent
    assert all(s.applied_at is not None for s in await migrations.status(url))
    assert await catalogue_of(url) == expected_catalogue()

    assert await migrations.downgrade(url, 0) == list(reversed(ALL))
    assert await catalogue_of(url) == {}
    assert all(s.applied_at is None for s in await migrations.status(url))

    assert await migrations.upgrade(url) == ALL
    assert await catalogue_of(url) == expected_catalogue()


async def test_each_down_migration_exactly_reverses_its_up(fresh_database) -> None:
    url = await fresh_database()
    for version in ALL:
        await migrations.upgrade(url, version)
        assert await catalogue_of(url) == expected_catalogue(version), f"after {version:03d}"
        await migrations.downgrade(url, version - 1 if version > 1 else 0)
        assert await catalogue_of(url) == expected_catalogue(version - 1), f"after reverting {version:03d}"
        await migrations.upgrade(url, version)


async def test_status_before_anything_lists_all_pending(fresh_database) -> None:
    url = await fresh_database()
    states = await migrations.status(url)
    assert [(s.version, s.applied_at) for s in states] == [(v, None) for v in ALL]


async def test_unknown_target_is_refused_naming_the_field(fresh_database) -> None:
    url = await fresh_database()
    with pytest.raises(ValidationFailed) as caught:
        await migrations.upgrade(url, 999)
    assert caught.value.field == "to"
    assert await catalogue_of(url) == {}


async def test_concurrent_upgrades_apply_each_migration_once(fresh_database) -> None:
    url = await fresh_database()
    results = await asyncio.gather(*(migrations.upgrade(url) for _ in range(4)))
    assert sorted(v for r in results for v in r) == ALL
    assert await catalogue_of(url) == expected_catalogue()


BAD_ROWS = [
    ("fleet_tasks_status_check", ("INSERT INTO fleet_tasks (id, operator_id, status, description, repo, base_branch)"
     " VALUES ('abcdef1', 'a', 'dancing', 'd', 'r', 'main')")),
    ("fleet_tasks_id_check", ("INSERT INTO fleet_tasks (id, operator_id, description, repo, base_branch)"
     " VALUES ('BAD ID', 'a', 'd', 'r', 'main')")),
    ("fleet_tasks_retry_budget_check", ("INSERT INTO fleet_tasks (id, operator_id, description, repo, base_branch,"
     " retry_count, max_retries) VALUES ('abcdef2', 'a', 'd', 'r', 'main', 4, 3)")),
    ("fleet_tasks_retry_count_check", ("INSERT INTO fleet_tasks (id, operator_id, description, repo, base_branch,"
     " retry_count) VALUES ('abcdef3', 'a', 'd', 'r', 'main', -1)")),
    ("fleet_tasks_priority_check", ("INSERT INTO fleet_tasks (id, operator_id, description, repo, base_branch,"
     " priority) VALUES ('abcdef4', 'a', 'd', 'r', 'main', 101)")),
    ("fleet_tasks_task_type_check", ("INSERT INTO fleet_tasks (id, operator_id, description, repo, base_branch,"
     " task_type) VALUES ('abcdef5', 'a', 'd', 'r', 'main', 'poem')")),
    ("fleet_tasks_runtime_check", ("INSERT INTO fleet_tasks (id, operator_id, description, repo, base_branch,"
     " runtime) VALUES ('abcdef6', 'a', 'd', 'r', 'main', 'vm')")),
    ("fleet_tasks_ci_status_check", ("INSERT INTO fleet_tasks (id, operator_id, description, repo, base_branch,"
     " ci_status) VALUES ('abcdef7', 'a', 'd', 'r', 'main', 'green')")),
    ("fleet_operators_tier_check", "INSERT INTO fleet_operators (id, tier) VALUES ('a', 'emperor')"),
    ("fleet_notifications_status_check", ("INSERT INTO fleet_notifications (operator_id, type, channel, status)"
     " VALUES ('a', 't', 'cli', 'lost')")),
]


@pytest.mark.parametrize(("constraint", "sql"), BAD_ROWS, ids=[c for c, _ in BAD_ROWS])
async def test_checks_reject_bad_rows(session_db_url: str, database, constraint: str, sql: str) -> None:
    conn = await asyncpg.connect(session_db_url)  # owner: CHECKs bind whatever RLS says
    try:
        with pytest.raises(asyncpg.CheckViolationError) as caught:
            await conn.execute(sql)
        assert caught.value.constraint_name == constraint
    finally:
        await conn.close()


async def test_outbox_dedup_key_is_unique_and_txid_recorded(database) -> None:
    async with database.system() as conn:
        await conn.execute("INSERT INTO fleet_outbox (event_type, operator_id, dedup_key) VALUES ('x', 'a', 'k-dup')")
        with pytest.raises(asyncpg.UniqueViolationError):
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO fleet_outbox (event_type, operator_id, dedup_key) VALUES ('x', 'a', 'k-dup')")
        row = await conn.fetchrow("SELECT txid, txid = pg_current_xact_id() AS same FROM fleet_outbox"
                                  " WHERE dedup_key = 'k-dup'")
    assert row["same"] is True


async def test_updated_at_triggers_fire(database) -> None:
    async with database.system() as conn:
        await conn.execute("INSERT INTO fleet_config (operator_id, key, value) VALUES ('trig', 'k', '1')")
        await conn.execute("INSERT INTO fleet_operators (id) VALUES ('trig')")
    await asyncio.sleep(0.01)
    async with database.system() as conn:
        await conn.execute("UPDATE fleet_config SET value = '2' WHERE operator_id = 'trig'")
        await conn.execute("UPDATE fleet_operators SET tier = 'builder' WHERE id = 'trig'")
        config = await conn.fetchrow("SELECT created_at, updated_at FROM fleet_config WHERE operator_id = 'trig'")
        operator = await conn.fetchrow("SELECT created_at, updated_at FROM fleet_operators WHERE id = 'trig'")
    assert config["updated_at"] > config["created_at"]
    assert operator["updated_at"] > operator["created_at"]


async def test_live_task_queries_use_the_partial_index(database) -> None:
    async with database.system() as conn:
        await conn.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(r[0] for r in await conn.fetch(
            f"EXPLAIN SELECT count(*) FROM fleet_tasks WHERE operator_id = 'x' AND {LIVE_SQL}"))
    assert "fleet_tasks_live_idx" in plan


async def test_an_applied_migration_edited_since_is_refused_and_shown(fresh_database, tmp_path) -> None:
    url = await fresh_database()
    await migrations.upgrade(url, 2)
    states = await migrations.status(url)
    assert [s.checksum_ok for s in states] == [True, True] + [None] * (len(ALL) - 2)
    conn = await asyncpg.connect(url)
    try:  # what the ledger holds for 002 is no longer what its file says
        await conn.execute(f"UPDATE {migrations.LEDGER_TABLE} SET checksum = repeat('0', 64) WHERE version = 2")
    finally:
        await conn.close()
    with pytest.raises(migrations.MigrationEditedError) as caught:
        await migrations.upgrade(url)
    assert str(caught.value).startswith("migration 002_executions was edited after it was applied")
    assert [s.checksum_ok for s in await migrations.status(url)][:2] == [True, False]
    assert [s.version for s in await migrations.status(url) if s.applied_at] == [1, 2]  # nothing more ran

    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_") and k != "DATABASE_URL"}
    env.update(FLEET_DATABASE__URL=url, FLEET_DATA_DIR=str(tmp_path / "data"))
    up = subprocess.run([FLEET_TUI, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120)
    assert up.returncode == 4 and up.stdout == ""
    assert up.stderr.count("\n") == 1 and "002_executions was edited after it was applied" in up.stderr
    status = subprocess.run([FLEET_TUI, "db", "status"], env=env, capture_output=True, text=True, timeout=120)
    assert status.returncode == 4
    lines = status.stdout.splitlines()
    assert lines[1].split()[:2] == ["001", "core"] and lines[1].endswith("checksum ok")
    assert lines[2].endswith("EDITED since applied") and lines[3].split()[2] == "pending"
