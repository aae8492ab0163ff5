"""Which HTTP proxy, if any, an outbound request goes through.

The rules, the same for the models' client (tailwinds.wire), the aiohttp sessions (tools,
URL upserts, Chroma) and MCP servers over HTTP:

- `TAILWINDS_OUTBOUND_PROXY` unset or empty: the environment's, with the semantics curl,
  requests and httpx share: `HTTPS_PROXY` for https URLs, `HTTP_PROXY` for http ones,
  `ALL_PROXY` for either when the other is unset (lower-case names win, as
  `urllib.request.getproxies` reads them; `HTTP_PROXY` is ignored in a CGI request).
- `TAILWINDS_OUTBOUND_PROXY=http://[user:password@]host[:port]`: that proxy for every
  URL, the environment's ignored. `off`: no proxy, the environment ignored.
- `NO_PROXY` (or `no_proxy`) in both cases: comma-separated host names (matching the host
  and its subdomains; a leading `.` or `*.` means the same), `host:port`, IP addresses or
  networks in CIDR form (`10.0.0.0/8`), or `*` for every host.

A proxy is an `http://` one (a CONNECT tunnel carries https, TLS verified end to end with
the destination); credentials in its URL are sent as `Proxy-Authorization: Basic` and
never shown (`repr`, errors and logs carry the proxy's host and port only).
"""

from __future__ import annotations

import base64
import ipaddress
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

OFF = ("off", "none")


@dataclass(frozen=True, slots=True)
class Proxy:
    host: str
    port: int
    username: str = field(default="", repr=False)
    password: str = field(default="", repr=False)

    @property
    def url(self) -> str:
        """The proxy's URL without its credentials."""
        name = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{name}:{self.port}"

    @property
    def authorization(self) -> str | None:
        """The `Proxy-Authorization` header's value (RFC 9110 §11.7.1, Basic: RFC 7617)."""
        if not self.username and not self.password:
            return None
        pair = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


def parse_proxy(text: str) -> Proxy:
    """`http://[user:password@]host[:port]` (or `host:port`, http assumed; port 80 by
    default; credentials percent-decoded). Raises ValueError saying what is wrong, never
    echoing the credentials."""
    text = text.strip()
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValueError("expected http://host:port (the port a number up to 65535)") from None
    if parts.scheme.lower() != "http":
        raise ValueError(
            f"a {parts.scheme}:// proxy is not supported: give an http:// one "
            "(https URLs still go through it in a CONNECT tunnel)"
        )
    if not parts.hostname:
        raise ValueError("expected http://host:port, the host is missing")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("a proxy URL has no path, query or fragment")
    return Proxy(
        parts.hostname, port or 80, unquote(parts.username or ""), unquote(parts.password or "")
    )


@dataclass(frozen=True, slots=True)
class ProxyRules:
    """The proxy of each scheme and the hosts that bypass it (the module's rules)."""

    http: Proxy | None = None
    https: Proxy | None = None
    no_proxy: tuple[str, ...] = ()

    def for_url(self, scheme: str, host: str, port: int) -> Proxy | None:
        """The proxy a request to `scheme://host:port` goes through, or None: direct."""
        proxy = self.https if scheme == "https" else self.http if scheme == "http" else None
        if proxy is None or self.bypassed(host, port):
            return None
        return proxy

    def bypassed(self, host: str, port: int) -> bool:
        host = host.strip("[]").rstrip(".").lower()
        try:
            ip = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            ip = None
        for entry in self.no_proxy:
            if entry == "*":
                return True
            name, want_port = _split_port(entry)
            if want_port is not None and want_port != port:
                continue
            if ip is not None:
                try:
                    if ip in ipaddress.ip_network(name, strict=False):
                        return True
                except ValueError:
                    pass
                continue
            name = name.removeprefix("*").lstrip(".")
            if name and (host == name or host.endswith("." + name)):
                return True
        return False


def _split_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):  # [::1]:8080
        name, _, rest = entry[1:].partition("]")
        port = rest.removeprefix(":")
        return name, int(port) if port.isdigit() else None
    if entry.count(":") == 1:
        name, _, port = entry.partition(":")
        return name, int(port) if port.isdigit() else None
    return entry, None


def proxy_rules(setting: str, environ: Mapping[str, str] | None = None) -> ProxyRules:
    """The rules from `TAILWINDS_OUTBOUND_PROXY`'s value and the environment (the process's
    when None). Raises ValueError naming the variable whose proxy URL is unusable."""
    env = _proxy_environment(environ)
    no_proxy = tuple(e.strip().lower() for e in env.get("no", "").split(",") if e.strip())
    setting = setting.strip()
    if setting.lower() in OFF:
        return ProxyRules()
    if setting:
        try:
            proxy = parse_proxy(setting)
        except ValueError as exc:
            raise ValueError(f"TAILWINDS_OUTBOUND_PROXY: {exc}") from None
        return ProxyRules(proxy, proxy, no_proxy)
    found: dict[str, Proxy | None] = {"all": None}
    for scheme in ("http", "https", "all"):
        value = env.get(scheme, "").strip()
        if scheme == "all" and found["http"] and found["https"]:
            break  # never used: a socks5:// ALL_PROXY beside HTTP(S)_PROXY stops nothing
        try:
            found[scheme] = parse_proxy(value) if value else None
        except ValueError as exc:
            raise ValueError(
                f"{scheme.upper()}_PROXY: {exc} (or TAILWINDS_OUTBOUND_PROXY=off to ignore "
                "the environment's proxies)"
            ) from None
    return ProxyRules(found["http"] or found["all"], found["https"] or found["all"], no_proxy)


def _proxy_environment(environ: Mapping[str, str] | None) -> dict[str, str]:
    if environ is None:
        return urllib.request.getproxies_environment()
    # urllib's reading (lower case wins; HTTP_PROXY ignored in a CGI request), on `environ`
    found: dict[str, str] = {}
    for name, value in environ.items():
        if value and name.upper().endswith("_PROXY") and name.upper() == name:
            found[name[:-6].lower()] = value
    if "REQUEST_METHOD" in environ:
        found.pop("http", None)
    for name, value in environ.items():
        if name.endswith("_proxy") and name.lower() == name:
            if value:
                found[name[:-6]] = value
            else:
                found.pop(name[:-6], None)
    return found


DIRECT = ProxyRules()
"""No proxy for any URL."""
