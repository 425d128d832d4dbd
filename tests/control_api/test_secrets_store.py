"""The secrets store: migration 0004 marks only seeded (operator) agent versions, sealed values
are bound to their row, and webhook secrets stored in plaintext before 0004 are sealed."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text

from control_api.analytics.tables import WebhookRow
from control_api.store import open_store
from control_api.store.crypto import SealError, SecretBox, new_key, tenant_secret_context
from control_api.store.migrate import migrate
from control_api.store.models import AgentVersion
from control_api.store.secrets import open_webhook_secret, seal_legacy

NOW = datetime.datetime(2025, 5, 1, tzinfo=datetime.UTC)


async def test_migration_marks_only_seeded_versions_as_the_operators(tmp_path: Path) -> None:
    store = open_store(f"sqlite+aiosqlite:///{tmp_path / 'v.db'}", SecretBox(new_key()))
    try:
        await migrate(store, "0003_replay")
        async with store.session() as session:
            await session.execute(
                text("INSERT INTO tenants (id, name, created_at) VALUES ('t', 't', :now)"),
                {"now": NOW},
            )
            await session.execute(
                text(
                    "INSERT INTO agents (id, tenant_id, name, version, created_at, updated_at) "
                    "VALUES (1, 't', 'a', 2, :now, :now)"
                ),
                {"now": NOW},
            )
            for version, note in ((1, "seeded"), (2, "updated")):
                await session.execute(
                    text(
                        "INSERT INTO agent_versions (agent_id, version, spec, created_at, note) "
                        "VALUES (1, :v, 'name = \"a\"', :now, :note)"
                    ),
                    {"v": version, "now": NOW, "note": note},
                )
        await migrate(store)
        async with store.session() as session:
            rows = (
                await session.scalars(select(AgentVersion).order_by(AgentVersion.version))
            ).all()
        assert [(r.note, r.operator) for r in rows] == [("seeded", True), ("updated", False)]
    finally:
        await store.close()


def test_a_sealed_value_opens_only_where_it_was_stored() -> None:
    box = SecretBox(new_key())
    sealed = box.seal("sk-1", tenant_secret_context("acme", "openai"))
    assert box.open(sealed, tenant_secret_context("acme", "openai")) == "sk-1"
    with pytest.raises(SealError):  # copied to another tenant's row
        box.open(sealed, tenant_secret_context("other", "openai"))
    with pytest.raises(SealError):  # another node's key
        SecretBox(new_key()).open(sealed, tenant_secret_context("acme", "openai"))


async def test_plaintext_webhook_secrets_are_sealed_at_start(tmp_path: Path) -> None:
    box = SecretBox(new_key())
    store = open_store(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}", box)
    try:
        await migrate(store)
        async with store.session() as session:
            session.add(
                WebhookRow(
                    id="wh_1", tenant_id="t", url="https://example.com/h", events=[],
                    secret="whsec_legacy", after_outbox_id=0, created_at=NOW,
                )
            )  # fmt: skip
        assert open_webhook_secret(box, "wh_1", "whsec_legacy") == "whsec_legacy"
        assert await seal_legacy(store) == 1
        assert await seal_legacy(store) == 0
        async with store.session() as session:
            row = await session.get(WebhookRow, "wh_1")
        assert row is not None and row.secret.startswith("v1.") and "legacy" not in row.secret
        assert open_webhook_secret(box, "wh_1", row.secret) == "whsec_legacy"
    finally:
        await store.close()
