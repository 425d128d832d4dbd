"""The /phone softphone: a static page and its script and style (no build step), and the
short-lived tokens its printed link carries.

`voicenode serve` prints `http://HOST:PORT/phone#key=vnp_...`: a phone token, not the admin key.
It places WebRTC calls to the demo tenant's agents (`POST /v1/webrtc/offer`, nothing else) until
`http.phone_token_ttl_s` after it was issued; the page removes it from the address bar once read.
Only its SHA-256 is kept, in this process (a restart issues a new link).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from importlib.resources import files
from pathlib import Path
from typing import Final

from litestar import Response, Router, get
from litestar.static_files import create_static_files_router

STATIC_DIR: Final = Path(str(files("control_api").joinpath("static")))
_NO_STORE: Final = {"Cache-Control": "no-store"}
PHONE_TOKEN_PREFIX: Final = "vnp_"
MAX_TOKENS: Final = 64
"""Live tokens kept at most (the oldest go first)."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class PhoneTokens:
    """Issues phone tokens and says whether one is still valid (sans-IO: the caller gives the
    time, on the monotonic scale of the node's clock)."""

    def __init__(self, ttl_s: float) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self._ttl_s = ttl_s
        self._expiry: dict[bytes, float] = {}

    def issue(self, now: float) -> str:
        token = PHONE_TOKEN_PREFIX + secrets.token_urlsafe(24)
        self._expiry = {d: t for d, t in self._expiry.items() if t > now}
        while len(self._expiry) >= MAX_TOKENS:
            del self._expiry[next(iter(self._expiry))]
        self._expiry[_digest(token)] = now + self._ttl_s
        return token

    def valid(self, token: str, now: float) -> bool:
        if not token.startswith(PHONE_TOKEN_PREFIX):
            return False
        digest = _digest(token)
        for known, expiry in self._expiry.items():
            if hmac.compare_digest(known, digest):
                return now < expiry
        return False


@get("/phone", include_in_schema=False, sync_to_thread=False)
def phone_page() -> Response[bytes]:
    html = (STATIC_DIR / "phone.html").read_bytes()
    return Response(
        html,
        media_type="text/html; charset=utf-8",
        headers={**_NO_STORE, "Referrer-Policy": "no-referrer"},
    )


def phone_router() -> Router:
    static = create_static_files_router(path="/phone/static", directories=[STATIC_DIR])
    return Router(path="/", route_handlers=[phone_page, static])
