"""The web app at `/`: the playground, the chatflow editor and the admin pages, served
from the package (no CDN, nothing fetched at run time)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, PlainTextResponse, Response
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parents[2] / "web" / "static"

# the page loads only its own files; model output rendered as text could not run a script
# even if it got through
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> Response:
    page = STATIC / "index.html"
    if not page.exists():
        return PlainTextResponse(
            "The web app is not built: run `npm install && npm run build` in web/.", 503
        )
    return FileResponse(page, headers=PAGE_HEADERS)


def assets() -> StaticFiles:
    """`/assets`: file names carry a hash of their content, so they may be cached long."""
    return StaticFiles(directory=STATIC / "assets", check_dir=False)
