"""Opening connections: one place that turns 'cannot connect' into one clear line,
and that derives the app role's URL from the owner's."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from collections.abc import AsyncIterator
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from fleet_tui.store.errors import DatabaseUnavailableError, describe_connect_error

CONNECT_TIMEOUT_S = 5.0

# Failures that mean "this URL does not lead to a usable database" rather than a bug.
CONNECT_FAILURES: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    ValueError,  # malformed URL
)


async def open_connection(url: str, *, timeout_s: float = CONNECT_TIMEOUT_S) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(url, timeout=timeout_s)
    except CONNECT_FAILURES as exc:
        raise DatabaseUnavailableError(describe_connect_error(url, exc)) from None


@asynccontextmanager
async def connect_owner(url: str, *, timeout_s: float = CONNECT_TIMEOUT_S) -> AsyncIterator[asyncpg.Connection]:
    conn = await open_connection(url, timeout_s=timeout_s)
    try:
        yield conn
    finally:
        await conn.close()


def with_user(url: str, user: str, password: str | None) -> str:
    """The same server and database as `url`, logged in as `user`."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    cred = quote(user, safe="")
    if password:
        cred += ":" + quote(password, safe="")
    return urlunsplit(parts._replace(netloc=f"{cred}@{host}"))


def with_database(url: str, database: str) -> str:
    """The same server and login as `url`, on another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(database, safe="")))
