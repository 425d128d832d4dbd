"""`control_api.store.subjects`: the stored forms of a number that name a subject (and the near
misses that must not), the keyed reference, and migration `0011_subjects` on SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from config.schema import NodeSettings, Settings, StoreSettings
from control_api.store import open_store
from control_api.store.crypto import KEY_FILE, new_key
from control_api.store.migrate import alembic_config, migrate
from control_api.store.subjects import (
    PLACEHOLDER,
    is_subject,
    number_matches,
    parse_phone,
    subject_ref,
    subject_ref_key,
)
from tests.control_api.migrations import schema_diffs

PHONE = "+5511987654321"


@pytest.mark.parametrize(
    "uri",
    [
        '"Ana" <sip:+5511987654321@carrier.example>;tag=9a1',
        "<sip:5511987654321@10.0.0.7;user=phone>;tag=x",
        "sip:+5511987654321@carrier.example",
        "sips:005511987654321@carrier.example:5061",
        "tel:+55-11-98765-4321",
        "<tel:+55.11.98765.4321;phone-context=example>",
        "+5511987654321",
        "5511987654321",
        "SIP:+5511987654321@HOST",
    ],
)
def test_stored_forms_of_the_number_match(uri: str) -> None:
    assert number_matches(uri, PHONE)


@pytest.mark.parametrize(
    "uri",
    [
        "sip:+551198765432@carrier.example",  # one digit short
        "sip:+55119876543210@carrier.example",  # one digit more
        "sip:11987654321@carrier.example",  # national: the country is not guessed
        "sip:011987654321@carrier.example",
        '"+5511987654321" <sip:anonymous@anonymous.invalid>',  # the display name is not the id
        "sip:alice@example.com",
        "audiosocket:40325ec2-5efd-4bd3-805f-53576e581d13",
        "webrtc:browser",
        "agent:receptionist",
        "",
        "sip:+١١٩٨٧٦٥٤٣٢١@host",  # digits, but not ASCII ones
    ],
)
def test_other_numbers_and_non_numbers_do_not(uri: str) -> None:
    assert not number_matches(uri, PHONE)


def test_the_caller_of_inbound_and_the_callee_of_outbound_calls() -> None:
    mine, agent = f"sip:{PHONE}@carrier", "sip:+5511300000000@node"
    assert is_subject("inbound", mine, agent, PHONE)
    assert not is_subject("inbound", agent, mine, PHONE)  # the subject's number as the DID
    assert is_subject("outbound", "", mine, PHONE)
    assert not is_subject("outbound", mine, agent, PHONE)
    assert is_subject("", "", mine, PHONE) and is_subject("", mine, "", PHONE)


@pytest.mark.parametrize("text", ["5511987654321", "+55 11 987", "+0123", "+", "", "+" + "1" * 16])
def test_only_e164_is_a_phone(text: str) -> None:
    with pytest.raises(ValueError, match="not an E.164 number") as caught:
        parse_phone(text)
    assert len(text) < 4 or text not in str(caught.value)  # never repeated back


def test_the_reference_is_keyed_per_node_key_and_tenant(tmp_path: Path) -> None:
    key = new_key()
    configured = Settings(store=StoreSettings(secrets_key=key))
    (tmp_path / KEY_FILE).write_text(key + "\n")
    from_file = Settings(node=NodeSettings(data_dir=str(tmp_path)))
    ref_key = subject_ref_key(configured)
    assert ref_key is not None and ref_key == subject_ref_key(from_file)
    ref = subject_ref(ref_key, "acme", PHONE)
    assert ref.startswith("hmac-sha256:") and "987654321" not in ref
    assert ref == subject_ref(subject_ref_key(configured), "acme", PHONE)
    assert ref != subject_ref(ref_key, "other", PHONE)
    assert ref != subject_ref(
        subject_ref_key(Settings(store=StoreSettings(secrets_key=new_key()))), "acme", PHONE
    )
    nothing = Settings(node=NodeSettings(data_dir=str(tmp_path / "empty")))
    assert subject_ref_key(nothing) is None
    assert subject_ref(None, "acme", PHONE) == PLACEHOLDER


def _matches(connection: Connection) -> None:
    assert "subject_requests" in inspect(connection).get_table_names()
    diffs = schema_diffs(connection, {"subject_requests"})
    assert diffs == [], "control_api.store.subjects and 0011_subjects disagree"


def _down_one(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, "0011_subjects-1")


async def test_0011_creates_the_audit_table_as_declared_and_downgrades(tmp_path: Path) -> None:
    store = open_store(f"sqlite+aiosqlite:///{tmp_path / 'voicenode.db'}")
    try:
        await migrate(store, "0011_subjects")
        async with store.engine.connect() as conn:
            await conn.run_sync(_matches)
        async with store.engine.begin() as conn:
            await conn.run_sync(_down_one)
        async with store.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert "subject_requests" not in tables and "tenants" in tables
    finally:
        await store.close()
