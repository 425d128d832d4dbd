"""Declarative base, engine and session factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from control_api.store.crypto import SecretBox

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def default_url(data_dir: str) -> str:
    """The embedded default: a SQLite file under the node's data directory."""
    return f"sqlite+aiosqlite:///{Path(data_dir).resolve() / 'voicenode.db'}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


@dataclass(frozen=True, slots=True)
class Store:
    """An open database: `session()` opens a unit of work (commit on success). `box` seals
    the secrets it stores (tenant secrets, webhook secrets); None: storing them is refused."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    box: SecretBox | None = None

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session, session.begin():
            yield session

    async def close(self) -> None:
        await self.engine.dispose()


def open_store(url: str, box: SecretBox | None = None) -> Store:
    """Engine and sessions for an SQLAlchemy async URL (sqlite+aiosqlite, postgresql+asyncpg);
    `box` seals the secrets stored (see `Store`)."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    else:
        engine = create_async_engine(url, pool_pre_ping=True)
    return Store(engine, async_sessionmaker(engine, expire_on_commit=False), box)
