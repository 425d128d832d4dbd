"""Alembic environment for the node's store.

The node runs `upgrade head` itself at start (`control_api.store.migrate.migrate`), handing its
connection over in `config.attributes["connection"]`. Run from the command line, the URL comes
from `-x url=...` or the `sqlalchemy.url` option.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from control_api.store.migrate import target_metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata(),
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_url(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


def run_offline() -> None:
    context.configure(
        url=context.get_x_argument(as_dictionary=True).get("url")
        or config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata(),
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("no database URL: pass -x url=sqlite+aiosqlite:///path/voicenode.db")
    asyncio.run(_run_with_url(url))


if context.is_offline_mode():
    run_offline()
else:
    run_online()
