"""Persistence: asyncpg only. Pool + tenant context, migrations, one module per aggregate."""
