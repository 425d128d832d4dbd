"""Where a call or a transfer may go, as a typed value: an E.164 number, a SIP URI, or an
extension/queue name (sans-IO).

Every target that reaches the PBX or the SIP stack (`POST /v1/calls`, `POST
/v1/calls/{id}/transfer`, the model's `transfer_call`, a flow's `transfer`) is `parse`d here
first, and only `str(destination)` goes on. The grammar is deliberately narrow: no control
character, comma, semicolon, `&`, `$`, quote or bracket can survive it, so a target can neither
inject AMI headers or actions nor add Dial() options, channels or URI parameters. `parse` raises
`ValueError` with a specific message and never echoes the text it refused.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final

import msgspec

__all__ = ["Destination", "Extension", "Number", "SipUri", "parse"]

MAX_LENGTH: Final = 256
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_SEPARATORS: Final = re.compile(r"[ ().-]")
_E164: Final = re.compile(r"^\+[1-9][0-9]{5,14}$")
_EXTENSION: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_USER: Final = re.compile(r"^[A-Za-z0-9+_.~*-]{1,64}$")
_LABEL: Final = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_SIP: Final = re.compile(r"^(?P<scheme>sips?):(?:(?P<user>[^@]*)@)?(?P<hostport>[^@]+)$", re.I)


class Number(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="number"):
    """An E.164 number: `+`, country code and subscriber number, digits only."""

    e164: str

    def __str__(self) -> str:
        return self.e164


class SipUri(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="sip"):
    """`sip:` or `sips:` URI with an optional user, a host and an optional port; no
    parameters or headers."""

    host: str
    user: str = ""
    port: int | None = None
    secure: bool = False

    def __str__(self) -> str:
        scheme = "sips" if self.secure else "sip"
        user = f"{self.user}@" if self.user else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = f":{self.port}" if self.port is not None else ""
        return f"{scheme}:{user}{host}{port}"


class Extension(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="extension"):
    """A PBX extension or queue name (`100`, `front-desk`, `sales.queue`); the dial plan
    decides which names a tenant may use."""

    name: str

    def __str__(self) -> str:
        return self.name


Destination = Number | SipUri | Extension


def parse(text: str) -> Destination:
    """The destination `text` names; `ValueError` saying what is wrong otherwise."""
    if not text or not text.strip():
        raise ValueError("the destination is empty")
    if len(text) > MAX_LENGTH:
        raise ValueError(f"the destination is longer than {MAX_LENGTH} characters")
    if _CONTROL.search(text):
        raise ValueError("the destination contains a control character")
    if "," in text:
        raise ValueError("the destination contains a comma")
    text = text.strip()
    lower = text.lower()
    if lower.startswith(("sip:", "sips:")):
        return _sip(text)
    if lower.startswith("tel:"):
        return _number(text[4:])
    if text.startswith("+"):
        return _number(text)
    if _EXTENSION.match(text):
        return Extension(text)
    raise ValueError("not an E.164 number (+ and digits), a sip: URI or an extension name")


def _number(text: str) -> Number:
    digits = _SEPARATORS.sub("", text)
    if not _E164.match(digits):
        raise ValueError("not an E.164 number: + then 6 to 15 digits, no leading 0")
    return Number(digits)


def _sip(text: str) -> SipUri:
    match = _SIP.match(text)
    if match is None:
        raise ValueError("not a SIP URI: expected sip:user@host[:port]")
    user = match["user"]
    if user is not None and not _USER.match(user):
        raise ValueError("the SIP URI's user may hold only letters, digits and + _ . ~ * -")
    host, port = _host_port(match["hostport"])
    return SipUri(host=host, user=user or "", port=port, secure=match["scheme"].lower() == "sips")


def _host_port(text: str) -> tuple[str, int | None]:
    if any(c in text for c in ";?&="):
        raise ValueError("the SIP URI may not carry parameters or headers")
    port: int | None = None
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket:
            raise ValueError("the SIP URI's IPv6 host is missing its `]`")
        if rest:
            port = _port(rest)
        try:
            return str(ipaddress.IPv6Address(host)), port
        except ValueError:
            raise ValueError("the SIP URI's host is not an IPv6 address") from None
    host, colon, rest = text.partition(":")
    if colon:
        port = _port(":" + rest)
    try:
        return str(ipaddress.IPv4Address(host)), port
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ValueError("the SIP URI's host is not a host name or IP address")
    return host.rstrip(".").lower(), port


def _port(text: str) -> int:
    if not re.fullmatch(r":[0-9]{1,5}", text) or not 0 < int(text[1:]) < 65536:
        raise ValueError("the SIP URI's port is not a number from 1 to 65535")
    return int(text[1:])
