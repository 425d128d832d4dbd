"""The /analytics page: charts of `GET /v1/analytics/summary` for a key's tenant (calls per
day, outcome mix, voice-to-voice p50/p95 per day), a static page with its script and style
beside /phone's (no build step, nothing loaded from elsewhere).

The page holds no secret: it asks for an API key (or reads `#key=` from its address, then
removes it from the address bar, as /phone does) and sends it as the bearer of the summary
request, so the route's own auth and tenant scoping apply. The page itself is public.
"""

from __future__ import annotations

from typing import Final

from litestar import Response, Router, get
from litestar.static_files import create_static_files_router

from control_api.phone import STATIC_DIR

_HEADERS: Final = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self';"
        " img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
}


@get("/analytics", include_in_schema=False, sync_to_thread=False)
def analytics_page() -> Response[bytes]:
    html = (STATIC_DIR / "analytics.html").read_bytes()
    return Response(html, media_type="text/html; charset=utf-8", headers=_HEADERS)


def analytics_page_router() -> Router:
    static = create_static_files_router(path="/analytics/static", directories=[STATIC_DIR])
    return Router(path="/", route_handlers=[analytics_page, static])
