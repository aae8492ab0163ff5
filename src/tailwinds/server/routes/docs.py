"""`/docs`: the API's Swagger UI, served from installed files (the `fastapi-offline`
package carries swagger-ui's dist) with a strict Content-Security-Policy: no CDN, no
script from anywhere but this server, works offline. The page shares its origin with the
web app, which keeps the admin token in the tab: nothing foreign may run there.
(FastAPI's default pages load unpinned scripts from a CDN; `/redoc` is not served.)"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response

SWAGGER_DIST = Path(fastapi_offline.__file__).parent / "static"

DOCS_HEADERS = {
    # swagger-ui sets inline styles and draws its icons from data: URIs; scripts are ours
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Tailwinds API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"""

# a file, not an inline script, so that the policy can forbid inline scripts;
# validatorUrl null: the page would otherwise send the schema to validator.swagger.io
INIT = """window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
"""

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def docs() -> Response:
    return HTMLResponse(PAGE, headers={**DOCS_HEADERS, "Cache-Control": "no-cache"})


@router.get("/docs/init.js")
async def init() -> Response:
    return Response(INIT, media_type="text/javascript", headers=DOCS_HEADERS)


@router.get("/docs/swagger-ui-bundle.js")
async def swagger_js() -> Response:
    return FileResponse(
        SWAGGER_DIST / "swagger-ui-bundle.js", media_type="text/javascript", headers=DOCS_HEADERS
    )


@router.get("/docs/swagger-ui.css")
async def swagger_css() -> Response:
    return FileResponse(
        SWAGGER_DIST / "swagger-ui.css", media_type="text/css", headers=DOCS_HEADERS
    )
