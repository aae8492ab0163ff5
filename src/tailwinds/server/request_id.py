"""Request ids: the caller's `X-Request-ID` when it is a sane token, else a new one; echoed
in the answer and put on every log line written for the request (and, in queue mode, by
the worker that runs it). Set by the `RequestMetrics` middleware, which wraps `send`
already: one wrapper per streamed event, not two."""

from __future__ import annotations

import re
import uuid

from starlette.types import Scope

_SANE = re.compile(rb"^[A-Za-z0-9._:-]{1,64}$")


def request_id_of(scope: Scope) -> bytes:
    for name, value in scope["headers"]:
        if name == b"x-request-id" and _SANE.match(value):
            return bytes(value)
    return uuid.uuid4().hex.encode()
