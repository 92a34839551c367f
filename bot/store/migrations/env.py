"""Alembic environment for the bot's state (async engines: aiosqlite, asyncpg).

`bot.store.migrate` runs the migrations at every start on a connection it already holds
(passed in `config.attributes["connection"]`, inside the transaction that holds the
migration lock). Driven by the `alembic` command instead, it opens its own engine from
`sqlalchemy.url`.

A schema change is a new file in `versions/` (next number, `down_revision` = the previous
one) together with the matching change in `bot/store/schema.py`;
`tests/test_store_setup.py` fails while the two disagree.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from bot.store.schema import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine() -> None:
    engine = create_async_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported")

connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(_run_with_own_engine())
