"""A prediction's upload given as a URL (Flowise's `{type: "url", data: "<https URL>"}`):
fetched by the server like any request a caller steers (`outbound.fetch`: public
addresses only, plus the operator's TAILWINDS_OUTBOUND_NETWORKS; the address checked when
each connection is made, again at every redirect), within the chatflow's `maxFileBytes`
and `TIMEOUT_S`. Every refusal is a 400 naming `uploads.<n>` and the file."""

from __future__ import annotations

from typing import Any

from tailwinds.config import Settings
from tailwinds.errors import InvalidRequest
from tailwinds.outbound import Refused, Unreachable, fetch
from tailwinds.outbound.policies import tool_policy

TIMEOUT_S = 15  # the whole fetch, redirects included
MAX_URL = 2048


async def fetch_upload(
    url: Any, *, name: str, field: str, settings: Settings, max_bytes: int
) -> tuple[bytes, str]:
    """(body, its Content-Type lowercased without parameters: aiohttp's
    `application/octet-stream` when the answer names none) of an http(s) URL. A
    predictions route may be open to anyone, so the address policy is the HTTP tools'
    (`tool_policy`), not the URL upserts' (TAILWINDS_INGEST_PRIVATE_URLS does not open
    private addresses to it). The body is read up to `max_bytes` (the chatflow's
    `maxFileBytes`), and never past TAILWINDS_MAX_UPLOAD_BYTES: a data URL is bounded by
    the request body's cap, a URL by this."""
    max_bytes = min(max_bytes, settings.max_upload_bytes)
    if not isinstance(url, str) or not 0 < len(url) <= MAX_URL:
        raise InvalidRequest(
            f"{name}: expected an http(s) URL of at most {MAX_URL} characters",
            field=f"{field}.data",
        )
    try:
        got = await fetch(
            url,
            policy=tool_policy(settings),
            proxies=settings.proxies(),
            max_bytes=max_bytes,
            timeout_s=TIMEOUT_S,
            decode=False,
        )
    except Refused as exc:
        raise InvalidRequest(f"{name}: {exc}", field=f"{field}.data") from exc
    except Unreachable as exc:
        raise InvalidRequest(f"{name} could not be fetched: {exc}", field=f"{field}.data") from exc
    if got.status >= 400:
        raise InvalidRequest(f"{name}: {url[:200]} answered HTTP {got.status}", field=field)
    if got.truncated:
        raise InvalidRequest(f"{name}: larger than {max_bytes} bytes", field=field)
    return got.data, (got.content_type or "").lower()
