"""The node's store: SQLAlchemy 2 (async) over SQLite (WAL, the embedded default) or PostgreSQL
(asyncpg, shared by a fleet of nodes).

`Base` is the one declarative base every table module derives from; `open_store(url)` makes
the engine and session factory. Tables live in sibling modules (`tenants`, `agents`, ...,
`calls`, `outbox`); schema changes go through the Alembic migrations in `migrations/`.
"""

from __future__ import annotations

from control_api.store.base import Base, Store, default_url, open_store

__all__ = ["Base", "Store", "default_url", "open_store"]
