"""CORS for the public routes of a chatflow (predictions, aborts, resumes, upserts): its
`allowedOrigins`, else the server's TAILWINDS_CORS_ORIGINS. Requests without an Origin
header (servers, curl) pass untouched, so the streaming path pays nothing for it.

A page of this server itself (the web app's playground) is same-origin and needs no CORS
answer. A foreign origin that is not allowed gets no CORS headers on a read (the browser
withholds the answer) and `403` on anything that changes state, which a browser may send
without asking first (a form post): refused before it runs. On the routes of Flowise's
clients a refused origin passes the preflight and gets a `403` it can read (CORS headers,
a plain-text body), which the chat widget shows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tailwinds.server.cross_site import STATE_CHANGING
from tailwinds.server.errors import send_error
from tailwinds.server.headers import header, same_origin
from tailwinds.server.route_kinds import FLOWISE_PATH, public_chatflow_id

# Last-Event-ID: an EventSource resuming a stream sends it (docs/clients.md)
ALLOW_HEADERS = b"Content-Type, Authorization, Last-Event-ID"
ALLOW_METHODS = b"GET, POST, PUT, OPTIONS"

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
        origin = header(scope, b"origin")
        chatflow_id = public_chatflow_id(scope["path"]) if origin else None
        if origin is None or chatflow_id is None:
            await self.app(scope, receive, send)
            return
        allowed = await self.origins_for(scope, chatflow_id) or self.default
        ok = "*" in allowed or origin.decode("latin-1") in allowed
        cors = [
            (b"access-control-allow-origin", origin),
            (b"vary", b"Origin"),
            (b"access-control-expose-headers", b"Retry-After"),
        ]
        readable = FLOWISE_PATH.match(scope["path"]) is not None
        if scope["method"] == "OPTIONS" and header(scope, b"access-control-request-method"):
            await _preflight(send, ok or readable, cors)
            return
        if not ok and readable:
            # Flowise's widget shows a 403's body as it is: let it read one
            await _send_text(send, 403, _REFUSED, cors)
            return
        if not ok:
            if scope["method"] in STATE_CHANGING and not same_origin(
                origin, header(scope, b"host")
            ):
                await send_error(send, 403, "forbidden", _REFUSED, [(b"vary", b"Origin")])
                return
            await self.app(scope, receive, send)  # no CORS headers: the browser refuses it
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *cors]
            await send(message)

        await self.app(scope, receive, send_with_cors)


_REFUSED = "this origin may not call this chatflow"


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
    await send_error(send, 403, "forbidden", _REFUSED, [(b"vary", b"Origin")])


async def _send_text(
    send: Send, status: int, text: str, headers: list[tuple[bytes, bytes]]
) -> None:
    body = text.encode()
    start_headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": start_headers})
    await send({"type": "http.response.body", "body": body})
