"""Secrets at rest: AES-256-GCM with the node's key (`store.secrets_key`).

A sealed value is `v1.` + url-safe base64 of a 12-byte random nonce and the ciphertext with
its tag. The associated data binds it to where it is stored (`tenant_secret:TENANT/NAME`,
`webhook:ID`): a sealed value copied to another row does not open.

The key comes from the configuration; without one the node keeps its own in
`node.data_dir/secrets.key`, generated on first start (mode 0600) and logged as generated
(never the key itself). Every node of a fleet sharing one store needs the same key.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from config.schema import Settings
from core.errors import StoreError

log = logging.getLogger(__name__)

PREFIX: Final = "v1."
KEY_FILE: Final = "secrets.key"
_NONCE_BYTES: Final = 12


class SecretsKeyError(StoreError, ValueError):
    """The configured or stored key is not 32 bytes of url-safe base64."""


class SealError(StoreError, ValueError):
    """A sealed value does not open with this key (wrong key, tampered, or moved)."""


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def _decode_key(text: str, origin: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.strip().encode())
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise SecretsKeyError(f"{origin}: must be 32 bytes of url-safe base64 (44 characters)")
    return raw


class SecretBox:
    """Seals and opens short secrets with one key."""

    def __init__(self, key: str, origin: str = "store.secrets_key") -> None:
        self._aead = AESGCM(_decode_key(key, origin))

    def seal(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, sealed: str, context: str) -> str:
        if not is_sealed(sealed):
            raise SealError("not a sealed value")
        try:
            raw = base64.urlsafe_b64decode(sealed[len(PREFIX) :].encode())
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode())
        except (binascii.Error, ValueError, InvalidTag) as exc:
            raise SealError("the sealed value does not open with this node's key") from exc
        return plain.decode()


def is_sealed(value: str) -> bool:
    return value.startswith(PREFIX)


def tenant_secret_context(tenant_id: str, name: str) -> str:
    return f"tenant_secret:{tenant_id}/{name}"


def webhook_context(webhook_id: str) -> str:
    return f"webhook:{webhook_id}"


def load_box(settings: Settings) -> SecretBox:
    """The node's box: `store.secrets_key`, else the key file in `node.data_dir` (created with
    mode 0600 when missing). Raises `SecretsKeyError` for a malformed key."""
    if settings.store.secrets_key:
        return SecretBox(settings.store.secrets_key)
    path = Path(settings.node.data_dir) / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return SecretBox(path.read_text(encoding="ascii"), str(path))
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(new_key() + "\n")
    log.warning(
        "generated a secrets key for tenant and webhook secrets (store.secrets_key unset); "
        "back it up, and give every node sharing this store the same key",
        extra={"path": str(path.resolve())},
    )
    return SecretBox(path.read_text(encoding="ascii"), str(path))
