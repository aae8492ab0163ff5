"""Reading the request head as the ASGI scope holds it (lower-case names, raw bytes), and
comparing an `Origin` with the server's own name (RFC 6454 origins, RFC 9110 `Host`)."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import Scope

DEFAULT_PORTS = {"http": 80, "https": 443}


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of header `name` (lower case), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def split_host(host: str) -> tuple[str, int | None]:
    """`Host` (or an origin's netloc) as (lower-case name without a trailing dot, port);
    an IPv6 literal keeps its brackets: `[::1]:3000` -> ("[::1]", 3000). A port that is
    not a number gives port -1, which matches nothing."""
    host = host.strip().lower()
    name, port = host, None
    if host.startswith("["):
        end = host.find("]")
        name, rest = host[: end + 1], host[end + 1 :]
        if rest.startswith(":"):
            port = _port(rest[1:])
    elif host.count(":") == 1:
        name, _, raw = host.partition(":")
        port = _port(raw)
    return name.rstrip("."), port


def _port(raw: str) -> int:
    return int(raw) if raw.isdigit() and len(raw) <= 5 else -1


def same_origin(origin: bytes, host: bytes | None) -> bool:
    """Whether the page that sent `Origin` is this server as the request names it (`Host`).
    The scheme is not compared: behind a TLS proxy the page is https, the request http; a
    `Host` without a port means the default port of the page's scheme."""
    if host is None:
        return False
    try:
        parts = urlsplit(origin.decode("latin-1"))
    except ValueError:
        return False
    if parts.scheme not in DEFAULT_PORTS or not parts.netloc:
        return False  # `null`, file:, extensions: never this server
    origin_name, origin_port = split_host(parts.netloc)
    host_name, host_port = split_host(host.decode("latin-1"))
    if origin_name != host_name:
        return False
    default = DEFAULT_PORTS[parts.scheme]
    return (origin_port or default) == (host_port or default)
