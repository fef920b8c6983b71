"""The database: embedded server or DATABASE_URL, role bootstrap, migrations, the app pool,
and the tenant context every query runs in."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from collections.abc import AsyncIterator, Callable

import asyncpg

from fleet_tui.config import Settings
from fleet_tui.domain.models import Operator
from fleet_tui.store import embedded, migrations, roles
from fleet_tui.store.connect import CONNECT_FAILURES, connect_owner, with_user
from fleet_tui.store.errors import DatabaseUnavailableError, describe_connect_error

log = logging.getLogger(__name__)


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb/json columns in and out as Python objects
    for type_name in ("jsonb", "json"):
        await conn.set_type_codec(type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


class PooledConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg is untyped (Any)
    """A pool connection needs no reset query when it goes back (asyncpg still rolls back an
    open transaction): every scope's settings are transaction-local (set_config(..., true)),
    its advisory locks are transaction locks, and LISTEN and cursors never use the pool. The
    default query (unlock all, CLOSE ALL, UNLISTEN *, RESET ALL) cost every scope a round trip,
    about ten on each spawn's path."""

    def get_reset_query(self) -> str:
        return ""


async def resolve_owner_url(settings: Settings) -> tuple[str, embedded.EmbeddedPostgres | None]:
    """DATABASE_URL when given, else the embedded server under data_dir (started if needed)."""
    if settings.database_url:
        return settings.database_url, None
    server = await embedded.start(settings.data_dir / "postgres")
    return server.owner_url, server


async def prepare_database(settings: Settings, owner_url: str, target: int | None = None) -> str:
    """Create the app role, apply migrations (up to target), grant; return the app role's URL."""
    if target is not None:
        migrations.check_target(target)  # refuse before touching anything
    role = settings.database.app_role
    password = roles.app_password(owner_url, role, settings.data_dir)
    async with connect_owner(owner_url, timeout_s=settings.database.connect_timeout_s) as conn:
        await roles.ensure_app_role(conn, role, password)
        await conn.execute("SELECT pg_advisory_lock($1)", migrations.MIGRATION_LOCK_KEY)
        try:
            await migrations.upgrade_conn(conn, target)
            await roles.grant_app_role(conn, role)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", migrations.MIGRATION_LOCK_KEY)
    return with_user(owner_url, role, password)


class Database:
    """Owns the app pool (and the embedded server if it started one)."""

    def __init__(self, settings: Settings, pool: asyncpg.Pool, owner_url: str, app_url: str,
                 server: embedded.EmbeddedPostgres | None) -> None:
        self.settings = settings
        self.pool = pool
        self.owner_url = owner_url
        self.app_url = app_url
        self._server = server
        self._closed = False

    @classmethod
    async def open(cls, settings: Settings) -> Database:
        owner_url, server = await resolve_owner_url(settings)
        try:
            app_url = await prepare_database(settings, owner_url)
            pool = await cls._create_pool(settings, app_url)
        except BaseException:
            if server is not None:
                await embedded.stop(server)
            raise
        return cls(settings, pool, owner_url, app_url, server)

    @staticmethod
    async def _create_pool(settings: Settings, app_url: str) -> asyncpg.Pool:
        cfg = settings.database
        try:
            return await asyncpg.create_pool(
                app_url,
                min_size=cfg.pool_min,
                max_size=cfg.pool_max,
                max_inactive_connection_lifetime=cfg.idle_s,
                timeout=cfg.connect_timeout_s,
                init=_init_connection,
                connection_class=PooledConnection,
                server_settings={
                    "application_name": "fleet-tui",
                    # a floor for anything run outside tenant(); tenant() sets its own
                    "statement_timeout": str(max(cfg.statement_timeout_ms.values(), default=60_000)),
                },
            )
        except CONNECT_FAILURES as exc:
            raise DatabaseUnavailableError(describe_connect_error(app_url, exc)) from None

    @property
    def embedded(self) -> bool:
        return self._server is not None

    def _timeout_ms(self, kind: str) -> int:
        timeouts = self.settings.database.statement_timeout_ms
        if kind not in timeouts:
            raise ValueError(f"kind: must be one of {sorted(timeouts)}")
        return timeouts[kind]

    @asynccontextmanager
    async def _scoped(self, operator_id: str, is_admin: bool, kind: str) -> AsyncIterator[asyncpg.Connection]:
        timeout_ms = self._timeout_ms(kind)
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                # is_local=true: the settings die with the transaction, so nothing leaks
                # to the next borrower of this pooled connection
                await conn.execute(
                    "SELECT set_config('app.operator_id', $1, true),"
                    " set_config('app.is_admin', $2, true),"
                    " set_config('statement_timeout', $3, true)",
                    operator_id, "true" if is_admin else "false", str(timeout_ms),
                )
                yield conn

    def tenant(self, operator: Operator | None, *, kind: str = "write") -> AbstractAsyncContextManager[asyncpg.Connection]:
        """A transaction acting as `operator` (None: sees nothing; admin: sees all)."""
        if operator is None:
            return self._scoped("", False, kind)
        return self._scoped(operator.id, operator.is_admin, kind)

    def system(self, *, kind: str = "write") -> AbstractAsyncContextManager[asyncpg.Connection]:
        """A transaction with admin visibility, for the monitor, relay and governor counts."""
        return self._scoped("", True, kind)

    async def close(self, timeout_s: float = 10) -> None:
        """Drain the pool (waiting for borrowed connections up to timeout_s), then stop the
        embedded server if this process was its last user."""
        if self._closed:
            return
        self._closed = True
        try:
            await asyncio.wait_for(self.pool.close(), timeout_s)
        except TimeoutError:
            log.warning("pool did not drain within %ss; terminating connections", timeout_s)
            self.pool.terminate()
        if self._server is not None:
            await embedded.stop(self._server)


def install_drain_handlers(loop: asyncio.AbstractEventLoop, db: Database,
                           on_drained: Callable[[], None] | None = None, *, timeout_s: float = 10) -> None:
    """On SIGTERM/SIGINT: drain the pool (and embedded server), then call on_drained."""

    def _handle() -> None:
        async def _drain() -> None:
            await db.close(timeout_s)
            if on_drained is not None:
                on_drained()

        loop.create_task(_drain())

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _handle)


def system_read(source: Database | asyncpg.Connection) -> AbstractAsyncContextManager[asyncpg.Connection]:
    """A system read scope of its own, or, given a connection, that connection in its caller's
    scope: reads on one path (a spawn's routing) share one acquire and one transaction."""
    if isinstance(source, Database):
        return source.system(kind="read")
    return _given(source)


@asynccontextmanager
async def _given(conn: asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:
    yield conn
