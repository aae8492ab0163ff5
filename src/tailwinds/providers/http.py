"""What every HTTP provider does the same way: open the request with retries while nothing
has arrived, read raw bytes under a first-token deadline and then an idle timeout, hand
them to the protocol's parser, and close the upstream request on the way out, whatever the
way out is (end, error, abort, client gone)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson

from tailwinds.engine.messages import Usage
from tailwinds.errors import ProviderBadResponse, ProviderError, ProviderRejected
from tailwinds.outbound.addresses import Refused
from tailwinds.providers.base import (
    RETRYABLE_STATUSES,
    ProviderLimits,
    error_for_exception,
    error_for_status,
)
from tailwinds.redaction import redact
from tailwinds.sse import SSEProtocolError
from tailwinds.wire import WireClient, WireError, WireResponse

MAX_ERROR_BODY_BYTES = 64 * 1024


class StreamParser(Protocol):
    """One protocol's reading of a response body: bytes in, text pieces out."""

    done: bool
    usage: Usage | None
    # what went wrong in the last chunk: raised once the pieces before it are out
    error: ProviderError | None

    def feed(self, chunk: bytes) -> list[Any]:
        """Text pieces (str), and tool calls once complete."""

    def finish(self) -> None:
        """At end of body: raise `ProviderBadResponse` if the answer was cut short."""


class Endpoint:
    """A provider's URL, headers and limits, and the shared client that reaches it."""

    def __init__(
        self,
        wire: WireClient,
        base_url: str,
        path: str,
        headers: dict[str, str],
        limits: ProviderLimits,
        secret: str | None,
    ) -> None:
        self.wire = wire
        self.url = base_url.rstrip("/") + path
        self.headers = headers
        self.limits = limits
        # what errors call the provider: its host, never the full URL with its query
        self.name = urlsplit(base_url).netloc or base_url
        self.secret = secret

    async def open(self, body: bytes) -> WireResponse:
        """POST `body`, retrying with backoff on connection errors, 429 and 5xx; the
        caller bounds the time it takes."""
        attempt = 0
        while True:
            try:
                resp = await self.wire.post(
                    self.url, self.headers, body, self.limits.connect_timeout_s
                )
            except Refused as exc:  # the address policy: no retry will change it
                raise ProviderRejected(f"{self.name} may not be reached: {exc}") from exc
            except (OSError, WireError, TimeoutError) as exc:
                if attempt >= self.limits.retries:
                    raise error_for_exception(exc, self.name) from exc
                await asyncio.sleep(self.limits.retry_delay_s(attempt))
                attempt += 1
                continue
            if resp.status == 200:
                return resp
            if 300 <= resp.status < 400:
                # not followed: a model call that moved should be configured where it went
                location = redact(
                    resp.headers.get("location", "an address it does not say"), self.secret
                )
                resp.close()
                raise ProviderRejected(
                    f"{self.name} answered {resp.status}, redirecting to {location}: "
                    "use that address as the node's base URL"
                )
            message = await self._error_message(resp)
            error = error_for_status(resp.status, message, self.name)
            if resp.status not in RETRYABLE_STATUSES or attempt >= self.limits.retries:
                raise error
            retry_after = _seconds(resp.headers.get("retry-after"))
            await asyncio.sleep(self.limits.retry_delay_s(attempt, retry_after))
            attempt += 1

    async def _error_message(self, resp: WireResponse) -> str:
        try:
            raw = await resp.read_at_most(MAX_ERROR_BODY_BYTES)
        except (OSError, WireError, TimeoutError):
            raw = b""  # the status says enough
        finally:
            resp.close()
        return redact(message_from_body(raw), self.secret)

    async def fetch(self, body: bytes, limit: int) -> bytes:
        """POST `body` and read the whole answer (embeddings), within the first-token
        deadline."""
        resp: WireResponse | None = None
        try:
            async with asyncio.timeout(self.limits.first_token_timeout_s):
                resp = await self.open(body)
                raw = await resp.read_all(limit)
        except ProviderError:
            raise
        except (OSError, WireError, TimeoutError) as exc:
            raise error_for_exception(exc, self.name) from exc
        finally:
            if resp is not None:
                resp.close()
        return raw

    async def stream(
        self,
        body: bytes,
        parser: StreamParser,
        on_refusal: Callable[[ProviderRejected], bytes | None] | None = None,
    ) -> AsyncIterator[Any]:
        """The parser's pieces as the body's bytes arrive. `on_refusal` may give another
        body to try when the server refuses this one (a 4xx other than 429)."""
        loop = asyncio.get_running_loop()
        resp: WireResponse | None = None
        try:
            async with asyncio.timeout_at(loop.time() + self.limits.first_token_timeout_s):
                try:
                    resp = await self.open(body)
                except ProviderRejected as refusal:
                    retry = on_refusal(refusal) if on_refusal is not None else None
                    if retry is None:
                        raise
                    resp = await self.open(retry)
                del body  # else held as long as the stream: orjson's ~4 KB buffer a stream
                pieces: list[Any] = []
                while not pieces and not parser.done and parser.error is None:
                    chunk = await resp.read()
                    if not chunk:
                        break
                    pieces = parser.feed(chunk)
            resp.set_idle_timeout(self.limits.idle_timeout_s)
            for piece in pieces:
                yield piece
            read = resp.read
            feed = parser.feed
            while not parser.done and parser.error is None:
                chunk = await read()
                if not chunk:
                    break
                for piece in feed(chunk):
                    yield piece
            if parser.error is not None:
                raise parser.error
        except ProviderError:
            raise
        except SSEProtocolError as exc:
            raise ProviderBadResponse(f"{self.name} sent a broken event stream: {exc}") from exc
        except (OSError, WireError, TimeoutError) as exc:
            raise error_for_exception(exc, self.name) from exc
        finally:
            if resp is not None:
                resp.close()  # on a cancel or abort this drops the upstream connection now
        parser.finish()
        if parser.usage is not None:
            yield parser.usage

    def bad_chunk(self, data: str | bytes) -> ProviderBadResponse:
        text = data if isinstance(data, str) else data.decode(errors="replace")
        return ProviderBadResponse(
            f"{self.name} sent a malformed chunk: {redact(text[:200], self.secret)!r}"
        )

    def stream_error(self, status: int, error: Any) -> ProviderError:
        return error_for_status(status, redact(message_of(error), self.secret), self.name)


def message_from_body(raw: bytes) -> str:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw[:500].decode(errors="replace").strip()
    if isinstance(body, dict) and "error" in body:
        return message_of(body["error"])
    return str(body)[:500]


def message_of(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error.get("type") or error.get("code") or error)[:500]
    return str(error)[:500]


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None
