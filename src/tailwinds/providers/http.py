"""What every HTTP provider does the same way: open the request with retries while nothing
has arrived (a failure status, or a retryable error the server reports in its 200 answer
before any token), read raw bytes under a first-token deadline and then an idle timeout,
hand them to the protocol's parser, and close the upstream request on the way out,
whatever the way out is (end, error, abort, client gone)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson

from tailwinds.errors import (
    AnswerTooLong,
    ProviderBadResponse,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from tailwinds.messages import Usage
from tailwinds.outbound.addresses import Refused
from tailwinds.providers.base import (
    RETRYABLE_STATUSES,
    ProviderLimits,
    ResponseInfo,
    error_class_for_status,
    error_for_exception,
    error_for_status,
    status_of_error,
)
from tailwinds.redaction import redact
from tailwinds.sse import SSEProtocolError
from tailwinds.wire import WireClient, WireError, WireResponse, WireTooLarge

MAX_ERROR_BODY_BYTES = 64 * 1024
# how far past an error text's cut secrets are looked for (longer than any key)
REDACTION_MARGIN = 4096
CREDENTIAL_HEADERS = frozenset(("authorization", "x-api-key", "api-key", "proxy-authorization"))
# whitespace looked past for the first byte of an event stream's body, at most
SNIFF_BYTES = 4096
# what a server reports in its 200 answer that another try may cure: the classes of the
# RETRYABLE_STATUSES (5xx, 529 overloaded, 429, 408, 409)
RETRYABLE_ERRORS = (ProviderUnavailable, ProviderRateLimited)


class StreamParser(Protocol):
    """One protocol's reading of a response body: bytes in, text pieces out."""

    # SSE: a body that opens with `{` is then one JSON document (an error answered with
    # status 200), read whole by `Endpoint.stream`; False for NDJSON, whose lines all do
    event_stream: bool
    done: bool
    usage: Usage | None
    # what went wrong in the last chunk: raised once the pieces before it are out
    error: ProviderError | None

    def feed(self, chunk: bytes) -> list[Any]:
        """Text pieces (str), and tool calls once complete."""

    def end(self) -> list[Any]:
        """At end of body (not after `done`): the pieces of a last line or event the server
        left unterminated, when it is whole."""

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
        # what must never show in an error: the key, and every credential header's value
        values = [v for k, v in headers.items() if k.lower() in CREDENTIAL_HEADERS]
        values += [v.split(None, 1)[1] for v in values if " " in v.strip()]
        self.secrets = sorted({s for s in (secret, *values) if s}, key=len, reverse=True)
        self.response = ResponseInfo()  # what the parser saw of the model's answer (traces)
        # a provider's reading of a failure status with its message, where the status alone
        # misleads (Gemini answers a bad key with 400): the status it stands for
        self.status_of_failure: Callable[[int, str], int] | None = None

    async def open(self, body: bytes) -> WireResponse:
        """POST `body`, retrying with backoff on connection errors, 429 and 5xx; the
        caller bounds the time it takes."""
        return (await self._open(body, 0))[0]

    async def _open(self, body: bytes, attempt: int) -> tuple[WireResponse, int]:
        """`open`, its tries counted from `attempt` (tries already spent on this answer);
        the answer, and the tries spent then."""
        while True:
            try:
                resp = await self.wire.post(
                    self.url, self.headers, body, self.limits.connect_timeout_s
                )
            except Refused as exc:  # the address policy: no retry will change it
                raise ProviderRejected(f"{self.name} may not be reached: {exc}") from exc
            except WireTooLarge as exc:
                raise error_for_exception(exc, self.name) from exc  # not worth another try
            except (OSError, WireError, TimeoutError) as exc:
                if attempt >= self.limits.retries:
                    raise error_for_exception(exc, self.name) from exc
                await asyncio.sleep(self.limits.retry_delay_s(attempt))
                attempt += 1
                continue
            if resp.status == 200:
                return resp, attempt
            if 300 <= resp.status < 400:
                # not followed: a model call that moved should be configured where it went
                location = self.redacted(
                    resp.headers.get("location", "an address it does not say"), 2000
                )
                resp.close()
                raise ProviderRejected(
                    f"{self.name} answered {resp.status}, redirecting to {location}: "
                    "use that address as the node's base URL"
                )
            message = await self._error_message(resp)
            error = error_for_status(resp.status, message, self.name)
            if self.status_of_failure is not None:
                status = self.status_of_failure(resp.status, message)
                error = error_class_for_status(status)(error.message)
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
        return self.redacted(message_from_body(raw), 500)

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
        new_parser: Callable[[], StreamParser],
        on_refusal: Callable[[ProviderRejected], bytes | None] | None = None,
    ) -> AsyncIterator[Any]:
        """The pieces of a parser from `new_parser` as the body's bytes arrive.
        `on_refusal` may give another body to try when the server refuses this one (a 4xx
        other than 429). A retryable error (5xx, 429: `RETRYABLE_ERRORS`) the server
        reports in its 200 answer before any piece is tried again, with a new parser, as a
        failure status is, within the same tries and first-token deadline."""
        loop = asyncio.get_running_loop()
        resp: WireResponse | None = None
        bytes_left = self.limits.max_stream_bytes
        attempt = 0
        try:
            async with asyncio.timeout_at(loop.time() + self.limits.first_token_timeout_s):
                while True:
                    try:
                        resp, attempt = await self._open(body, attempt)
                    except ProviderRejected as refusal:
                        retry = on_refusal(refusal) if on_refusal is not None else None
                        if retry is None:
                            raise
                        body, on_refusal = retry, None
                        resp, attempt = await self._open(body, attempt)
                    parser = new_parser()
                    pieces, bytes_left, ended = await self._first_pieces(resp, parser, bytes_left)
                    error = parser.error
                    if (
                        pieces
                        or not isinstance(error, RETRYABLE_ERRORS)
                        or attempt >= self.limits.retries
                    ):
                        break
                    resp.close()
                    resp = None
                    await asyncio.sleep(self.limits.retry_delay_s(attempt))
                    attempt += 1
                    bytes_left = self.limits.max_stream_bytes
                del body  # else held as long as the stream: orjson's ~4 KB buffer a stream
            resp.set_idle_timeout(self.limits.idle_timeout_s)
            for piece in pieces:
                yield piece
            read = resp.read
            feed = parser.feed
            while not ended and not parser.done and parser.error is None:
                chunk = await read()
                if not chunk:
                    for piece in parser.end():
                        yield piece
                    break
                bytes_left -= len(chunk)
                if bytes_left < 0:
                    raise self._too_long()
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

    async def _first_pieces(
        self, resp: WireResponse, parser: StreamParser, bytes_left: int
    ) -> tuple[list[Any], int, bool]:
        """Reads until the parser has pieces, is done or failed, or the body ended (then
        `parser.end` has run); the pieces, the bytes still allowed, and whether the body
        ended. An event stream that opens with `{` is one JSON document instead: read
        whole, as `parser.error`."""
        head = b""  # the body's start while only whitespace came (event streams)
        sniffing = parser.event_stream
        while True:
            chunk = await resp.read()
            if not chunk:
                return parser.end(), bytes_left, True
            bytes_left -= len(chunk)
            if bytes_left < 0:
                raise self._too_long()
            if sniffing:
                head += chunk
                start = head.lstrip()[:1]
                if not start and len(head) < SNIFF_BYTES:
                    continue
                sniffing = False
                if start == b"{":
                    parser.error = await self._json_body(resp, head)
                    return [], bytes_left, True
                chunk, head = head, b""
            pieces = parser.feed(chunk)
            if pieces or parser.done or parser.error is not None:
                return pieces, bytes_left, False

    async def _json_body(self, resp: WireResponse, head: bytes) -> ProviderError:
        """A 200 answer that is one JSON document where an event stream was asked for:
        servers (OpenAI-compatible gateways, Anthropic's) answer an error so. The error
        it carries, by its own code, type or words (`stream_error`); anything else is a
        bad response."""
        raw = head + await resp.read_at_most(MAX_ERROR_BODY_BYTES - len(head))
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict) and body.get("error") is not None:
            return self.stream_error(body["error"], where="in a JSON answer, not a stream")
        text = self.redacted(raw[: 200 + REDACTION_MARGIN].decode(errors="replace"), 200)
        return ProviderBadResponse(
            f"{self.name} answered one JSON document, not the event stream asked for: {text!r}"
        )

    def _too_long(self) -> AnswerTooLong:
        return AnswerTooLong(
            f"{self.name} sent more than {self.limits.max_stream_bytes} bytes for one answer"
        )

    def redacted(self, text: str, limit: int) -> str:
        """`text` without the endpoint's secrets, then cut to `limit` characters: in that
        order, so a key that straddles the cut is still wholly removed (security case 12).
        Only a window of `limit + REDACTION_MARGIN` is searched: a secret reaching into the
        kept part starts inside it and is shorter than the margin."""
        text = text[: limit + REDACTION_MARGIN]
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return redact(text)[:limit]

    def bad_chunk(self, data: str | bytes) -> ProviderBadResponse:
        if isinstance(data, bytes):
            data = data[: 200 + REDACTION_MARGIN].decode(errors="replace")
        return ProviderBadResponse(
            f"{self.name} sent a malformed chunk: {self.redacted(data, 200)!r}"
        )

    def stream_error(
        self, error: Any, default_status: int = 500, where: str = "in its stream"
    ) -> ProviderError:
        """An error the server reported inside its 200 answer, as the class its own status,
        code or type stands for (`status_of_error`), its message redacted and bounded."""
        status = status_of_error(error, default_status)
        message = self.redacted(message_of(error), 500)
        text = f"{self.name} reported an error {where} ({status}): {message}"
        return error_class_for_status(status)(text)


def message_from_body(raw: bytes) -> str:
    """An error answer's message (the whole of it: cut only after redaction)."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode(errors="replace").strip()
    if isinstance(body, dict) and "error" in body:
        return message_of(body["error"])
    return str(body)


def message_of(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error.get("type") or error.get("code") or error)
    return str(error)


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None
