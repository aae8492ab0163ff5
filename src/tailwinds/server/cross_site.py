"""Refuses the requests a web page on another site can make without asking (no CORS
preflight): a form or `fetch` with a form, text or typeless body, and any state-changing
call to a management route from a foreign `Origin`.

- Content type: a body sent with POST, PUT, PATCH or DELETE must be JSON
  (`application/json`, `*/*+json`), or on the upload routes multipart too; anything else,
  a missing `Content-Type` included, is `415`. Only JSON makes a browser ask first
  (preflight), which the CORS layer answers per chatflow; hand-parsed bodies are covered
  as well as FastAPI's.
- Origin: management routes change nothing for a page that is not this server itself
  (`Origin` naming the request's own `Host`): `403`. A request without `Origin` (servers,
  curl, the SDK) passes. The public routes of a chatflow are judged by its CORS origins
  (`cors.py`), not here.

(Fetch Standard §4.2 CORS-safelisted request headers; OWASP CSRF cheat sheet, "Verifying
origin with standard headers".)"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from tailwinds.server.errors import send_error
from tailwinds.server.headers import header, same_origin
from tailwinds.server.route_kinds import MULTIPART_PATH, PUBLIC_PATH

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def media_type(content_type: bytes | None) -> str:
    """`application/json; charset=utf-8` -> `application/json`; "" when absent."""
    if not content_type:
        return ""
    return content_type.split(b";", 1)[0].strip().lower().decode("latin-1")


def is_json(media: str) -> bool:
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class CrossSiteGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in STATE_CHANGING:
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        origin = header(scope, b"origin")
        if (
            origin is not None
            and not PUBLIC_PATH.match(path)
            and not same_origin(origin, header(scope, b"host"))
        ):
            await send_error(
                send,
                403,
                "cross_site",
                f"management calls are not taken from pages of other sites (Origin "
                f"{origin.decode('latin-1')!r} is not this server)",
            )
            return
        if _has_body(scope):
            media = media_type(header(scope, b"content-type"))
            multipart = media == "multipart/form-data" and MULTIPART_PATH.match(path)
            if not is_json(media) and not multipart:
                expected = "application/json"
                if MULTIPART_PATH.match(path):
                    expected += " or multipart/form-data"
                await send_error(
                    send,
                    415,
                    "unsupported_media_type",
                    f"Content-Type: expected {expected}, got {media or 'none'!r}",
                )
                return
        await self.app(scope, receive, send)


def _has_body(scope: Scope) -> bool:
    length = header(scope, b"content-length")
    if length is not None:
        return length != b"0"
    return header(scope, b"transfer-encoding") is not None
