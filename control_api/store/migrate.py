"""Schema migrations, run by the node at start: `await migrate(store)` upgrades to head.

The Alembic scripts live in `migrations/` (shipped as package data). On PostgreSQL the upgrade
holds an advisory lock, so nodes of a fleet starting together migrate one after the other.
From a shell: `alembic -c /dev/null -x url=URL upgrade head` with `script_location` pointing at
the folder also works (see `alembic_config`).
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

from control_api.store.base import Base, Store

log = logging.getLogger(__name__)

MIGRATIONS: Final = Path(__file__).with_name("migrations")
LOCK_ID: Final = 0x766F6963  # "voic": one fleet-wide advisory lock for schema changes


TABLE_MODULES: Final = (
    "control_api.store.models",
    "control_api.analytics.tables",
    "control_api.campaigns.rows",
    "control_api.campaigns.dnc",
    "control_api.store.tenants",
    "control_api.store.subjects",
)
"""Every module that declares tables on `Base` (what autogenerate and the schema test see)."""


def target_metadata() -> MetaData:
    """`Base.metadata` with every table module imported."""
    for name in TABLE_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return Base.metadata


def alembic_config(url: str = "") -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def migrate(store: Store, revision: str = "head") -> None:
    """Upgrade the store's schema to `revision` (default: the newest)."""
    async with store.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": LOCK_ID})
        await conn.run_sync(_upgrade, revision)
    log.info("store schema up to date", extra={"revision": revision})


async def current_revision(store: Store) -> str | None:
    """The revision the database is at (None: never migrated)."""
    from alembic.runtime.migration import MigrationContext

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with store.engine.connect() as conn:
        return await conn.run_sync(read)
