"""Whether the migrations build the tables the models describe: Alembic autogenerate compares
the migrated database on a connection with `control_api.store.Base.metadata` (column types
compared too), and the differences about the tables a test owns are returned.

    async with store.engine.connect() as conn:
        diffs = await conn.run_sync(schema_diffs, {"campaigns", "campaign_contacts"})
    assert diffs == [], "the models and the migration disagree"
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from control_api.store import Base


def table_of(diff: Any) -> str:
    """The table an autogenerate diff is about."""
    item = diff[0] if isinstance(diff, list) else diff  # modify_* diffs come in lists
    op, subject = item[0], item[1]
    if op.endswith("_table"):
        return str(subject.name)
    if op.endswith(("_column", "_nullable", "_type", "_default", "_comment")):
        return str(item[2])
    if op.endswith("_fk"):
        return str(subject.parent.name)
    return str(subject.table.name)  # indexes, constraints


def schema_diffs(connection: Connection, tables: Collection[str]) -> list[Any]:
    """The differences between the database on `connection` and the models, on `tables` only.
    Each of `tables` must be in the models (its module imported), or nothing would compare."""
    unknown = set(tables) - set(Base.metadata.tables)
    assert not unknown, f"not in the models (their module not imported?): {sorted(unknown)}"
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return [d for d in compare_metadata(context, Base.metadata) if table_of(d) in tables]
