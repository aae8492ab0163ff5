"""CORS for the prediction routes, per chatflow: its `allowedOrigins`, else the server's
TAILWINDS_CORS_ORIGINS. Requests without an Origin header (servers, curl) pass untouched,
so the streaming path pays nothing for it."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PREDICTION_PATH = re.compile(
    r"^/api/v1/(?:predictions?/(?P<a>[^/]+)(?:/abort)?|chatmessage/abort/(?P<b>[^/]+)/[^/]+)$"
)
ALLOW_HEADERS = b"Content-Type, Authorization"
ALLOW_METHODS = b"POST, PUT, OPTIONS"

OriginsFor = Callable[[Scope, str], Awaitable[list[str] | None]]


class ChatflowCORS:
    def __init__(self, app: ASGIApp, origins_for: OriginsFor, default: list[str]) -> None:
        self.app = app
        self.origins_for = origins_for
        self.default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = _header(scope, b"origin")
        match = PREDICTION_PATH.match(scope["path"]) if origin else None
        if origin is None or match is None:
            await self.app(scope, receive, send)
            return
        chatflow_id = match["a"] or match["b"]
        allowed = await self.origins_for(scope, chatflow_id) or self.default
        ok = "*" in allowed or origin.decode() in allowed
        cors = [
            (b"access-control-allow-origin", origin),
            (b"vary", b"Origin"),
            (b"access-control-expose-headers", b"Retry-After"),
        ]
        if scope["method"] == "OPTIONS" and _header(scope, b"access-control-request-method"):
            await _preflight(send, ok, cors)
            return
        if not ok:
            await self.app(scope, receive, send)  # no CORS headers: the browser refuses it
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *cors]
            await send(message)

        await self.app(scope, receive, send_with_cors)


async def _preflight(send: Send, ok: bool, cors: list[tuple[bytes, bytes]]) -> None:
    if ok:
        headers = [
            *cors,
            (b"access-control-allow-methods", ALLOW_METHODS),
            (b"access-control-allow-headers", ALLOW_HEADERS),
            (b"access-control-max-age", b"600"),
        ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    body = b'{"error":"this origin may not call this chatflow","code":"forbidden"}'
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [(b"content-type", b"application/json"), (b"vary", b"Origin")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value  # type: ignore[no-any-return]
    return None
