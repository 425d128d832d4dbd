"""A sans-IO reader for the parts of a SIP request the node routes on.

pjsua2 hands the INVITE over as text (`SipRxData.wholeMsg`); routing needs its request-URI
user (the dialled number), a few headers and nothing else, so this reads the start line and
the header block (RFC 3261 section 7: folding, compact names, case-insensitive names) and
ignores the body. Bad input raises `ValueError` naming the problem.
"""

from __future__ import annotations

import re
from typing import Final

import msgspec

COMPACT: Final = {
    "i": "call-id",
    "m": "contact",
    "e": "content-encoding",
    "l": "content-length",
    "c": "content-type",
    "f": "from",
    "s": "subject",
    "k": "supported",
    "t": "to",
    "v": "via",
}
_START: Final = re.compile(r"^([A-Za-z0-9.!%*_+`'~-]+) (\S+) SIP/2\.0$")
"""Method (an RFC 3261 token: extension methods too), Request-URI, version, single spaces."""
_SCHEME: Final = re.compile(r"^(sips?|tel):", re.IGNORECASE)
_USER_OK: Final = re.compile(r"^[A-Za-z0-9+*#._!~()'%=&$,/-]{1,64}$")
MAX_HEADERS: Final = 256


class SipRequest(msgspec.Struct, frozen=True):
    method: str
    uri: str
    headers: tuple[tuple[str, str], ...]
    """(lower-case full name, value) in message order; folded lines joined."""

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive; compact forms accepted)."""
        key = COMPACT.get(name.lower(), name.lower())
        for hname, value in self.headers:
            if hname == key:
                return value
        return None

    @property
    def user(self) -> str:
        """The dialled number: the request-URI's user part without its parameters
        (`sip:+15551234;npdi@host` → `+15551234`), percent-decoding not applied."""
        return uri_user(self.uri)


def uri_user(uri: str) -> str:
    """The number a sip:, sips: or tel: URI names: `sip:1000@host;x=y` → `1000`,
    `sip:+1555;isub=7@host` → `+1555`, `tel:+1555;ext=2` → `+1555`. ValueError when there is
    none or it has characters a number cannot have.

    The user part of a SIP URI is everything before the `@` (RFC 3261 section 19.1.1: it may
    hold `;` and `?`, never a bare `@`), less a `:password` and the user parameters."""
    scheme = _SCHEME.match(uri)
    if scheme is None:
        raise ValueError(f"not a sip:, sips: or tel: URI ({len(uri)} characters)")
    rest = uri[scheme.end() :]
    if scheme.group(1).lower() == "tel":
        user = rest
    else:
        user, at, _ = rest.partition("@")
        if not at:
            raise ValueError("the request-URI has no user part")
        user = user.split(":", 1)[0]
    user = user.split(";", 1)[0]
    if not user:
        raise ValueError("the request-URI has no user part")
    if not _USER_OK.match(user):
        raise ValueError("the request-URI user has characters a number cannot have")
    return user


def parse_request(text: str) -> SipRequest:
    """The start line and headers of a SIP request. A `ValueError` says what is wrong without
    quoting the request (its URI and headers hold numbers: the error is logged)."""
    head = text.replace("\r\n", "\n").split("\n\n", 1)[0]
    lines = head.split("\n")
    start = _START.match(lines[0].strip())
    if start is None:
        raise ValueError(f"not a SIP request line ({len(lines[0])} characters)")
    if start.group(2).startswith("<"):
        raise ValueError("the request-URI is enclosed in <>")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t":
            if not headers:
                raise ValueError("a folded header line comes before any header")
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}".lstrip())
            continue
        name, sep, value = line.partition(":")
        name = name.strip().lower()
        if not sep or not name or " " in name:
            raise ValueError(f"malformed header line ({len(line)} characters)")
        headers.append((COMPACT.get(name, name), value.strip()))
        if len(headers) > MAX_HEADERS:
            raise ValueError(f"more than {MAX_HEADERS} headers")
    # Methods are case-sensitive (RFC 3261 section 7.1): `invite` is not INVITE.
    return SipRequest(method=start.group(1), uri=start.group(2), headers=tuple(headers))


def source_host(address: str) -> str:
    """The host of pjsua's `srcAddress` (`1.2.3.4:5060`, `[::1]:5060`)."""
    address = address.strip()
    if address.startswith("["):
        return address[1 : address.index("]")] if "]" in address else address[1:]
    host, _, _ = address.rpartition(":")
    return host or address
