"""The /phone softphone: a static page and its script and style (no build step)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Final

from litestar import Response, Router, get
from litestar.static_files import create_static_files_router

STATIC_DIR: Final = Path(str(files("control_api").joinpath("static")))
_NO_STORE: Final = {"Cache-Control": "no-store"}


@get("/phone", include_in_schema=False, sync_to_thread=False)
def phone_page() -> Response[bytes]:
    html = (STATIC_DIR / "phone.html").read_bytes()
    return Response(html, media_type="text/html; charset=utf-8", headers=_NO_STORE)


def phone_router() -> Router:
    static = create_static_files_router(path="/phone/static", directories=[STATIC_DIR])
    return Router(path="/", route_handlers=[phone_page, static])
