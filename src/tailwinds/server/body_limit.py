"""The body limit of every route, enforced before routing, auth and parsing, whatever the
framing: a declared `Content-Length` over the limit is answered `413` before a byte of
the body is read; a chunked body (RFC 9112 §7.1) is counted as it streams and refused
the moment it passes the limit. Uploads (document upserts, imports) have
TAILWINDS_MAX_UPLOAD_BYTES, every other route TAILWINDS_MAX_BODY_BYTES.

The unread rest of a refused body is left to the server, which discards it (so the
client, still sending, reads the answer) and keeps the connection."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tailwinds.errors import PayloadTooLarge
from tailwinds.server.errors import send_error
from tailwinds.server.route_kinds import UPLOAD_PATH


class BodyTooLarge(PayloadTooLarge):
    """Raised by the counting `receive` when a streamed body passes the limit."""


class BodyLimit:
    def __init__(self, app: ASGIApp, max_body_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: bytes | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                chunked = True
        if not chunked and (declared is None or declared == b"0"):
            await self.app(scope, receive, send)  # no body: nothing to count
            return
        upload = UPLOAD_PATH.match(scope["path"]) is not None
        limit = self.max_upload_bytes if upload else self.max_body_bytes
        what = "upload" if upload else "request body"
        message = f"the {what} is larger than {limit} bytes"
        if not chunked:
            # the server reads exactly the declared length, no more: checking it is enough
            assert declared is not None
            if not declared.isdigit() or int(declared) > limit:
                await send_error(send, 413, PayloadTooLarge.code, message)
                return
            await self.app(scope, receive, send)
            return
        await self._counted(scope, receive, send, limit, message)

    async def _counted(
        self, scope: Scope, receive: Receive, send: Send, limit: int, message: str
    ) -> None:
        received = 0
        overflowed = False
        answered = False

        async def counting_receive() -> Message:
            nonlocal received, overflowed
            event = await receive()
            if event["type"] == "http.request":
                received += len(event.get("body", b""))
                if received > limit:
                    overflowed = True
                    raise BodyTooLarge(message)
            return event

        async def checked_send(event: Message) -> None:
            # whoever caught the overflow (FastAPI turns it into "error parsing the body"),
            # the answer is the 413
            nonlocal answered
            if answered:
                return
            if overflowed and event["type"] == "http.response.start":
                answered = True
                await send_error(send, 413, PayloadTooLarge.code, message)
                return
            await send(event)

        try:
            await self.app(scope, counting_receive, checked_send)
        except BodyTooLarge:
            if not answered:
                answered = True
                await send_error(send, 413, PayloadTooLarge.code, message)
