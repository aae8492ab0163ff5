"""The HTTP/1.1 client the model providers speak through: POST a body, read the answer's
bytes as they arrive.

Hand-written over asyncio's protocols and httptools' C parser because a model's stream is
the token hot path. ARCHITECTURE.md measured bare relays at 45 to 53 µs of CPU per token with
a client like this one and 60 to 71 with aiohttp; aiohttp's stream reader, its waiter and the
read timeout it re-arms on every chunk are the difference (bench/RESULTS.md has what this
one saves in the whole server). `AiohttpClient` (TAILWINDS_MODEL_CLIENT=aiohttp) is the
same protocol (`ModelClient`) over aiohttp, the escape hatch.

It does: keep-alive connections pooled per origin; TLS; chunked, Content-Length and
close-delimited bodies; gzip and deflate when a server sends them unasked (inflated step by
step as the reader reads, bounded in all); a head bounded in size and header count; a connect
timeout; an idle timeout checked by one timer per idle period, not one per chunk;
back-pressure (it stops reading the socket while its reader lags). A connection whose
answer was not read to the end is closed, never reused: that is how a cancelled stream
stops the model. Interim 1xx answers are skipped; a POST is never re-sent once written
(`ConnectionClosed.maybe_processed`); dual-stack hosts get Happy Eyeballs; HTTP proxies
(CONNECT tunnels for https, Basic proxy auth) as tailwinds.outbound.proxies decides. It
leaves out what model APIs do not need: redirects, cookies, HTTP/2.
"""

from tailwinds.wire.client import IDLE_EXPIRY_S, MAX_IDLE_PER_ORIGIN, WireClient
from tailwinds.wire.errors import ConnectionClosed, WireError, WireTooLarge
from tailwinds.wire.protocol import CLIENTS, ModelClient, ModelResponse, model_client
from tailwinds.wire.response import (
    INFLATE_STEP_BYTES,
    KEPT_HEADERS,
    MAX_BUFFERED_BYTES,
    MAX_HEAD_BYTES,
    MAX_HEADERS,
    MAX_INFLATED_BYTES,
    WireResponse,
)

__all__ = [
    "CLIENTS",
    "IDLE_EXPIRY_S",
    "INFLATE_STEP_BYTES",
    "KEPT_HEADERS",
    "MAX_BUFFERED_BYTES",
    "MAX_HEADERS",
    "MAX_HEAD_BYTES",
    "MAX_IDLE_PER_ORIGIN",
    "MAX_INFLATED_BYTES",
    "ConnectionClosed",
    "ModelClient",
    "ModelResponse",
    "WireClient",
    "WireError",
    "WireResponse",
    "WireTooLarge",
    "model_client",
]
