"""Row-level security through the app role: fail closed, no cross-tenant reads or writes,
admin sees all, nothing leaks between pooled connections."""

from __future__ import annotations

import asyncio
import random
import uuid

import asyncpg
import pytest

from fleet_tui.domain.errors import NotFoundError
from fleet_tui.domain.models import Operator, Tier
from fleet_tui.store.db import Database
from fleet_tui.store.tasks import TaskRegistry

TENANT_TABLES = ["fleet_tasks", "fleet_audit", "fleet_outbox", "fleet_notifications", "fleet_config",
                 "fleet_operators"]


def tenant(prefix: str, admin: bool = False) -> Operator:
    return Operator(id=f"{prefix}-{uuid.uuid4().hex[:8]}", tier=Tier.SOVEREIGN, is_admin=admin)


async def seed(registry: TaskRegistry, who: Operator) -> str:
    """One task, one notification, one config row and one operator row owned by `who`."""
    task = await registry.create(who, description="own work", repo="/r", base_branch="main", task_type="feature")
    async with registry.db.tenant(who) as conn:
        await conn.execute("INSERT INTO fleet_notifications (task_id, operator_id, type, channel)"
                           " VALUES ($1, $2, 'spawned', 'cli')", task.id, who.id)
        await conn.execute("INSERT INTO fleet_config (operator_id, key, value) VALUES ($1, 'theme', $2)",
                           who.id, {"dark": True})
        await conn.execute("INSERT INTO fleet_operators (id, tier) VALUES ($1, 'sovereign')", who.id)
    return task.id


@pytest.fixture(scope="module")
def pair() -> tuple[Operator, Operator]:
    return tenant("alice"), tenant("bob")


@pytest.fixture(scope="module")
async def seeded(registry: TaskRegistry, pair) -> dict[str, str]:
    a, b = pair
    return {a.id: await seed(registry, a), b.id: await seed(registry, b)}


async def test_app_role_is_not_superuser_owner_or_bypassrls(database: Database, session_db_url: str) -> None:
    role = database.settings.database.app_role
    async with database.pool.acquire() as conn:
        assert await conn.fetchval("SELECT current_user") == role
        attrs = await conn.fetchrow("SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles"
                                    " WHERE rolname = current_user")
        owned = await conn.fetchval(
            "SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)"
            " AND relname LIKE 'fleet\\_%'")
    assert dict(attrs) == {"rolsuper": False, "rolbypassrls": False, "rolcreaterole": False, "rolcreatedb": False}
    assert owned == 0
    owner = await asyncpg.connect(session_db_url)
    try:
        rows = await owner.fetch(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c"
            " WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace"
            " AND (c.relname = 'fleet_operators' OR EXISTS (SELECT 1 FROM pg_attribute a"
            "      WHERE a.attrelid = c.oid AND a.attname = 'operator_id' AND NOT a.attisdropped))")
    finally:
        await owner.close()
    names = {r["relname"] for r in rows}
    assert set(TENANT_TABLES) <= names
    assert [r["relname"] for r in rows if not (r["relrowsecurity"] and r["relforcerowsecurity"])] == []


async def test_no_operator_set_sees_nothing(database: Database, seeded) -> None:
    async with database.tenant(None) as conn:
        for table in TENANT_TABLES:
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0, table
    async with database.pool.acquire() as conn:  # a bare pooled connection, no settings at all
        for table in TENANT_TABLES:
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0, table


async def test_operator_sees_only_own_rows(database: Database, registry: TaskRegistry, pair, seeded) -> None:
    a, b = pair
    async with database.tenant(a) as conn:
        for table in TENANT_TABLES:
            column = "id" if table == "fleet_operators" else "operator_id"
            owners = {r[0] for r in await conn.fetch(f"SELECT DISTINCT {column} FROM {table}")}
            assert owners == {a.id}, table
    with pytest.raises(NotFoundError):
        await registry.get(seeded[b.id], operator=a)


async def test_operator_cannot_update_or_delete_anothers_rows(database: Database, registry: TaskRegistry,
                                                              pair, seeded) -> None:
    a, b = pair
    with pytest.raises(NotFoundError):
        await registry.transition(seeded[b.id], 0, "cancelled", operator=a)
    async with database.tenant(a) as conn:
        assert await conn.execute("UPDATE fleet_tasks SET priority = 1 WHERE id = $1", seeded[b.id]) == "UPDATE 0"
        assert await conn.execute("UPDATE fleet_notifications SET attempts = 9 WHERE operator_id = $1",
                                  b.id) == "UPDATE 0"
        assert await conn.execute("DELETE FROM fleet_config WHERE operator_id = $1", b.id) == "DELETE 0"
        # nor move an own row over to B
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("UPDATE fleet_config SET operator_id = $1 WHERE operator_id = $2", b.id, a.id)
    theirs = await registry.get(seeded[b.id], operator=b)
    assert theirs.status == "proposed" and theirs.priority == 50


@pytest.mark.parametrize("sql", [
    "INSERT INTO fleet_tasks (id, operator_id, description, repo, base_branch) VALUES ('forged01', $1, 'd', 'r', 'm')",
    "INSERT INTO fleet_notifications (operator_id, type, channel) VALUES ($1, 'spawned', 'cli')",
    "INSERT INTO fleet_config (operator_id, key, value) VALUES ($1, 'forged', '1')",
    "INSERT INTO fleet_operators (id, tier) VALUES ($1, 'sovereign')",
])
async def test_operator_cannot_insert_as_another(database: Database, pair, sql: str) -> None:
    a, b = pair
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        async with database.tenant(a) as conn:
            await conn.execute(sql, b.id)


async def test_admin_sees_all(database: Database, registry: TaskRegistry, pair, seeded) -> None:
    admin = tenant("root", admin=True)
    async with database.tenant(admin) as conn:
        owners = {r[0] for r in await conn.fetch("SELECT DISTINCT operator_id FROM fleet_tasks")}
        configs = await conn.fetchval("SELECT count(*) FROM fleet_config WHERE operator_id = ANY($1)",
                                      list(seeded))
    assert set(seeded) <= owners and configs == 2
    assert (await registry.get(seeded[pair[1].id], operator=admin)).operator_id == pair[1].id


async def test_audit_is_append_only_for_the_app(database: Database, seeded) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with database.system() as conn:
            await conn.execute("DELETE FROM fleet_audit")


async def test_settings_do_not_outlive_the_transaction(database: Database, pair) -> None:
    async with database.tenant(pair[0]) as conn:
        assert await conn.fetchval("SELECT current_setting('app.operator_id', true)") == pair[0].id
    async with database.pool.acquire() as conn:
        # whichever connection we get back, outside a tenant transaction it is anonymous
        assert await conn.fetchval("SELECT coalesce(current_setting('app.operator_id', true), '')") == ""
        assert await conn.fetchval("SELECT coalesce(current_setting('app.is_admin', true), '')") in ("", "false")


async def test_1000_interleaved_pooled_requests_see_no_foreign_rows(
        database: Database, registry: TaskRegistry, pair, seeded) -> None:
    a, b = pair
    rng = random.Random(20240611)
    foreign = 0
    own_seen = 0

    async def request(who: Operator, i: int) -> tuple[int, int]:
        kind = i % 4
        async with database.tenant(who, kind="read" if kind else "write") as conn:
            if kind == 0:  # a write, then a read in the same transaction
                await conn.execute("INSERT INTO fleet_config (operator_id, key, value) VALUES ($1, $2, $3)"
                                   " ON CONFLICT (operator_id, key) DO UPDATE SET value = EXCLUDED.value",
                                   who.id, f"k{i % 7}", i)
            await asyncio.sleep(rng.random() / 1000)  # hold the connection to interleave borrowers
            rows = await conn.fetch(
                "SELECT operator_id FROM fleet_tasks UNION ALL SELECT operator_id FROM fleet_config"
                " UNION ALL SELECT operator_id FROM fleet_notifications UNION ALL SELECT operator_id FROM fleet_audit")
        return sum(r[0] != who.id for r in rows), sum(r[0] == who.id for r in rows)

    calls = [request(rng.choice((a, b)), i) for i in range(1000)]
    for start in range(0, len(calls), 50):  # 50 in flight against a pool of 10
        for bad, good in await asyncio.gather(*calls[start:start + 50]):
            foreign += bad
            own_seen += good
    assert foreign == 0
    assert own_seen >= 1000  # every request saw its own rows, so the check had something to see
