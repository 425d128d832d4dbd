"""Data subjects (LGPD/GDPR): who a phone number is in the stored forms, the reference that
stands for it where the number may not go, and the audit record of each request.

- `parse_phone(text)`: the subject's number as the API takes it, E.164 (`+`, country code and
  digits); `ValueError` otherwise (the message never repeats the text).
- `uri_number(uri)` / `is_subject(call, e164)`: a call's number is the user part of its
  `from_uri` (inbound) or `to_uri` (outbound), in whatever form the transport stored it: a SIP
  `From` header with a display name and tag (`"Ana" <sip:+5511987654321@carrier>;tag=1`), a
  `sip:`/`sips:`/`tel:` URI, a bare number (Asterisk's originate), with visual separators
  (`-`, `.`, `(`, `)`, space) and user parameters (`;user=phone`) dropped. It matches the
  subject when it is the E.164 number, the same digits without the `+`, or with `00` before
  them. A national number without its country code is not matched (guessing the country could
  erase another person's calls).
- `subject_ref(key, tenant_id, e164)`: a keyed hash (HMAC-SHA-256 under a key derived from
  the node's secrets key, `subject_ref_key`) that stands for the subject in the audit record,
  the logs and the `subject.erased` event: the same for every request about one number in one
  tenant, and no use to anyone without the key. Without a key it is the placeholder `[PHONE]`.
- `SubjectRequestRow` (migration `0011_subjects`): one row per export or erasure: the tenant,
  the kind, the reference (never the number), who asked (key id, or `platform` for the
  platform admin key), when, and how many of each thing were exported or erased.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from datetime import datetime
from pathlib import Path
from typing import Final

from sqlalchemy import JSON, DateTime, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from config.schema import Settings
from control_api.store.base import Base
from control_api.store.crypto import KEY_FILE

PLACEHOLDER: Final = "[PHONE]"
"""The subject's reference when the node has no secrets key to hash it with."""
REF_PREFIX: Final = "hmac-sha256:"
_E164: Final = re.compile(r"^\+[1-9][0-9]{1,14}$")
_SEPARATORS: Final = re.compile(r"[\s().-]")
_ANGLE: Final = re.compile(r"<([^>]*)>")
_SCHEME: Final = re.compile(r"^(?:sips?|tel):", re.I)
_KEY_CONTEXT: Final = b"voicenode subject reference v1\x00"


class SubjectRequestRow(Base):
    """The audit record of one data-subject request."""

    __tablename__ = "subject_requests"
    __table_args__ = (Index("ix_subject_requests_tenant_at", "tenant_id", "at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    """`exp_` or `era_` and 32 hex digits (an erasure's: its `subject.erased` event's
    `call_id`)."""
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    """export | erase"""
    subject_ref: Mapped[str] = mapped_column(String(80))
    """`subject_ref(...)`: the keyed hash of the number, or the placeholder; never the number."""
    actor: Mapped[str] = mapped_column(String(64))
    """The key id that asked, `platform` for the platform admin key."""
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    counts: Mapped[dict[str, int]] = mapped_column(JSON)
    """How many of each were exported or erased (`calls`, `recordings`, ...)."""


def parse_phone(text: str) -> str:
    """`text` when it is an E.164 number; `ValueError` (not repeating it) otherwise."""
    if not _E164.match(text):
        raise ValueError(
            "not an E.164 number: + then the country code and number, 2 to 15 digits in all, "
            "no spaces or separators (e.g. +14155550123)"
        )
    return text


def uri_number(uri: str) -> str | None:
    """The number a stored `from_uri`/`to_uri` names, as `+digits` or `digits` as it was
    stored (a leading `00` made `+`); None when its user part is not a number."""
    inside = _ANGLE.search(uri)
    text = inside.group(1) if inside else uri.split(";", 1)[0]
    text = _SCHEME.sub("", text.strip())
    user = text.split("@", 1)[0].split(";", 1)[0]
    user = _SEPARATORS.sub("", user)
    if user.startswith("00"):
        user = "+" + user[2:]
    digits = user.removeprefix("+")
    if not digits.isdigit() or not digits.isascii():
        return None
    return user


def number_matches(uri: str, e164: str) -> bool:
    """Whether the stored `uri` names the subject `e164` (see the module docstring)."""
    found = uri_number(uri)
    return found is not None and (found == e164 or "+" + found == e164)


def is_subject(direction: str, from_uri: str, to_uri: str, e164: str) -> bool:
    """Whether a call is the subject's: the caller of an inbound call, the callee of an
    outbound one (either, for a call whose direction was never recorded)."""
    if direction == "inbound":
        return number_matches(from_uri, e164)
    if direction == "outbound":
        return number_matches(to_uri, e164)
    return number_matches(from_uri, e164) or number_matches(to_uri, e164)


def subject_ref(key: bytes | None, tenant_id: str, e164: str) -> str:
    """The subject's reference in `tenant_id`: a keyed hash, or `PLACEHOLDER` without a key."""
    if key is None:
        return PLACEHOLDER
    digest = hmac.new(key, f"{tenant_id}\x00{e164}".encode(), hashlib.sha256).hexdigest()
    return REF_PREFIX + digest


def ref_key_from(secret: str) -> bytes | None:
    """The reference key derived from a secrets key (32 bytes of url-safe base64)."""
    try:
        raw = base64.urlsafe_b64decode(secret.strip().encode())
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 32:
        return None
    return hashlib.sha256(_KEY_CONTEXT + raw).digest()


def subject_ref_key(settings: Settings) -> bytes | None:
    """The node's reference key: derived from `store.secrets_key`, else from the key file the
    node keeps in `node.data_dir` (`store.crypto.load_box`), read only; None without either
    (references are then the placeholder). Every node sharing a store has the same key, so a
    subject's reference is the same on every node."""
    if settings.store.secrets_key:
        return ref_key_from(settings.store.secrets_key)
    path = Path(settings.node.data_dir) / KEY_FILE
    try:
        return ref_key_from(path.read_text(encoding="ascii"))
    except (OSError, UnicodeDecodeError):
        return None
