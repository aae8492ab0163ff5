"""URLs as the HTTP client will use them, and allow-lists compared on that form.

The client (aiohttp, through yarl) normalises a URL before it connects: the host goes
through IDNA (UTS #46 mapping: full-width digits, ideographic full stops, upper case),
dot-segments are removed from the path and `%2e` is read as `.`. Checking anything but that
normalised form lets a URL pass the check and then reach somewhere else, so every check
here parses with yarl first, and the request is then made with the very `URL` checked.

Allow-list entries (the httpRequest tool's `allowList`) are URLs too:

- `scheme://host[:port][/path]`: that scheme, that host exactly, that port (the scheme's
  default when none is written), and paths at or below `/path` on a segment boundary
  (`/public` admits `/public` and `/public/x`, not `/publicity`; `/public/` admits
  `/public/x`). Paths are compared percent-decoded, dot-segments removed.
- `scheme://*.host/...`: any subdomain of `host`, on a dot boundary (not `host` itself).
- `http://` or `https://` alone: any host and port of that scheme.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from yarl import URL

from tailwinds.outbound.addresses import Refused

SCHEMES = ("http", "https")


def normalised_path(path: str) -> str:
    """A decoded path with its dot-segments removed (RFC 3986 §5.2.4), always starting
    with `/`: what a server that decodes before it routes would see."""
    out: list[str] = []
    for segment in path.split("/")[1:] if path.startswith("/") else path.split("/"):
        if segment == "..":
            if out:
                out.pop()
        elif segment != ".":
            out.append(segment)
    trailing = path.endswith(("/", "/.", "/..")) and bool(out)
    return "/" + "/".join(out) + ("/" if trailing and out[-1] != "" else "")


@dataclass(frozen=True, slots=True)
class Target:
    """A URL as the client will request it."""

    url: URL
    scheme: str
    host: str  # ASCII (IDNA), lower case, no trailing dot
    port: int
    path: str  # decoded, dot-segments removed

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)


def parse_target(url: str | URL) -> Target:
    """Raises `Refused` for what is not an absolute http(s) URL with a host, or carries
    credentials (they would be sent to whoever the URL names)."""
    try:
        parsed = url if isinstance(url, URL) else URL(url)
        host = parsed.raw_host
    except (ValueError, UnicodeError) as exc:
        raise Refused(f"{str(url)[:200]!r} is not a URL: {exc}") from exc
    if parsed.scheme not in SCHEMES or not host:
        raise Refused(f"{str(url)[:200]!r} is not an http(s) URL")
    if parsed.raw_user is not None or parsed.raw_password is not None:
        raise Refused("URLs with credentials in them are refused")
    port = parsed.port
    if port is None or not 0 < port < 65536:
        raise Refused(f"{str(url)[:200]!r} has no usable port")
    return Target(parsed, parsed.scheme, host.rstrip(".").lower(), port, _path(parsed))


def _path(url: URL) -> str:
    # yarl already removed the encoded form's dot-segments; decoding can make new ones
    # (`%2F..%2F`), so they are removed again on the decoded path
    return normalised_path(url.path or "/")


@dataclass(frozen=True, slots=True)
class AllowEntry:
    scheme: str
    host: str | None  # None: any host (and any port)
    subdomains: bool
    port: int | None
    path: str

    def admits(self, target: Target) -> bool:
        if target.scheme != self.scheme:
            return False
        if self.host is None:
            return True
        if self.subdomains:
            if not target.host.endswith("." + self.host):
                return False
        elif target.host != self.host:
            return False
        if target.port != self.port:
            return False
        prefix = self.path
        if prefix.endswith("/"):
            return target.path.startswith(prefix) or target.path == prefix.rstrip("/")
        return target.path == prefix or target.path.startswith(prefix + "/")


def parse_entry(entry: str) -> AllowEntry:
    """One allow-list entry; ValueError says what is wrong with it."""
    scheme, sep, rest = entry.strip().partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in SCHEMES:
        raise ValueError(f"{entry!r}: expected an http:// or https:// URL")
    if rest == "":
        return AllowEntry(scheme, None, False, None, "/")
    subdomains = rest.startswith("*.")
    if subdomains:
        rest = rest[2:]
    try:
        target = parse_target(f"{scheme}://{rest}")
    except Refused as exc:
        raise ValueError(f"{entry!r}: {exc}") from None
    if target.url.raw_query_string or target.url.raw_fragment:
        raise ValueError(f"{entry!r}: a query or fragment cannot be allow-listed")
    if "*" in target.host:
        raise ValueError(f"{entry!r}: a wildcard may only start the host, as *.example.com")
    return AllowEntry(scheme, target.host, subdomains, target.port, target.path)


class AllowList:
    """URLs a tool may reach, compared on the normalised URL (see the module's rules)."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.entries = tuple(parse_entry(e) for e in entries)

    def check(self, target: Target) -> None:
        if not any(entry.admits(target) for entry in self.entries):
            raise Refused(f"{target.url} is not on this tool's allow-list")


def allow_list_problems(entries: Iterable[str]) -> list[tuple[int, str]]:
    """(index, what is wrong) for each entry that is not a usable allow-list entry."""
    problems = []
    for n, entry in enumerate(entries):
        try:
            parse_entry(entry)
        except ValueError as exc:
            problems.append((n, str(exc)))
    return problems
