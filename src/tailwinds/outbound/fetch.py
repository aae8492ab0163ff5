"""One outbound request a caller or a model steers (a URL upsert, the HTTP tools): the URL
checked on its normalised form, the address at connect time, again at every redirect,
and the answer read within a size and a time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from tailwinds.outbound.addresses import AddressPolicy, Refused
from tailwinds.outbound.client import describe_client_error, guarded_session, read_at_most
from tailwinds.outbound.proxies import DIRECT, ProxyRules
from tailwinds.outbound.urls import AllowList, parse_target

MAX_REDIRECTS = 3
REDIRECTS = (301, 302, 303, 307, 308)


class Unreachable(Exception):
    """The request went out but no usable answer came back (connection, time, HTTP)."""


@dataclass(slots=True)
class Fetched:
    url: str  # the last hop's
    status: int
    text: str
    truncated: bool  # the body was longer than `max_bytes`
    data: bytes = b""
    content_type: str = ""


async def fetch(
    url: str,
    *,
    policy: AddressPolicy,
    proxies: ProxyRules = DIRECT,
    allow_list: AllowList | None = None,
    method: str = "GET",
    body: Any = None,
    headers: dict[str, str] | None = None,
    max_bytes: int = 100_000,
    timeout_s: float = 10,
    decode: bool = True,
) -> Fetched:
    """One request, following at most three redirects, each hop checked like the first
    (allow-list, then the address when the connection is made). `headers` go to the
    first URL's origin only: a redirect elsewhere does not carry them on. Raises `Refused`
    (the URL or the address it leads to) or `Unreachable` (no usable answer in
    `timeout_s`, all redirects included). `decode=False`: `text` is left empty, for a
    caller that reads `data` itself (off the event loop: decoding megabytes is CPU).
    `proxies`: which proxy each hop goes through (its destination still checked)."""
    current = parse_target(url)
    first_origin = current.origin
    try:
        async with guarded_session(policy, timeout_s=timeout_s, proxies=proxies) as session:
            for _ in range(MAX_REDIRECTS + 1):
                if allow_list is not None:
                    allow_list.check(current)
                sent = headers if current.origin == first_origin else None
                async with session.request(
                    method, current.url, json=body, headers=sent, allow_redirects=False
                ) as resp:
                    location = resp.headers.get("Location")
                    if resp.status in REDIRECTS and location:
                        current = parse_target(current.url.join(URL(location)))
                        if resp.status == 303 or (resp.status in (301, 302) and method != "GET"):
                            method, body = "GET", None  # what browsers do
                        continue
                    data, truncated = await read_at_most(resp, max_bytes)
                    return Fetched(
                        str(current.url),
                        resp.status,
                        _decode(data, resp.charset) if decode else "",
                        truncated,
                        data,
                        resp.content_type,
                    )
    except Refused:
        raise
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise Unreachable(f"{current.url}: {describe_client_error(exc)}") from exc
    except ValueError as exc:  # a Location yarl cannot read
        raise Unreachable(f"{current.url}: a redirect to a malformed URL ({exc})") from exc
    raise Refused(f"more than {MAX_REDIRECTS} redirects")


def _decode(data: bytes, charset: str | None) -> str:
    try:
        return data.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return data.decode("utf-8", errors="replace")
