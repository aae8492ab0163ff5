"""The `Host` check: which names this server answers to. DNS rebinding points a name the
attacker owns at 127.0.0.1, so that the attacker's page and this server share an origin
in the browser; the request then carries the attacker's name in `Host`. Refusing names
the operator did not list defeats it (Starlette's TrustedHostMiddleware semantics, with
this project's error body).

Always served: `localhost` (and `*.localhost`, which browsers resolve to loopback
themselves) and IP literals, which no DNS answer can produce. Other names: those in
TAILWINDS_ALLOWED_HOSTS (`tw.example.com`, `*.example.com`, or `*` for any); when that
is empty, any name once TAILWINDS_ADMIN_TOKEN is set (management then needs the token,
which a rebinding page does not have) and none without it.

One exception: a chatflow's public routes that take a POST (its predictions, aborts and
upserts) answer a POST without an `Origin`, whatever its `Host`. Rebinding is a browser's
doing, and the Fetch standard has every browser send `Origin` with every request that is
not a GET or HEAD, same-origin ones included; a script or SDK that names the server by
another name (`Host: x`, an SSH tunnel's name) is a client these routes serve anyway.
GETs (the resume route) get no such exception: a same-origin GET from an http page
carries neither `Origin` nor `Sec-Fetch-Site`."""

from __future__ import annotations

import ipaddress

from starlette.types import ASGIApp, Receive, Scope, Send

from tailwinds.server.errors import send_error
from tailwinds.server.headers import header, split_host
from tailwinds.server.route_kinds import public_chatflow_id


def allowed_hosts(setting: str, admin_token: str | None) -> list[str] | None:
    """The host patterns to accept besides localhost and IP literals; None for any."""
    patterns = [p.strip().lower().rstrip(".") for p in setting.split(",") if p.strip()]
    if "*" in patterns or (not patterns and admin_token):
        return None
    return patterns


def host_allowed(name: str, patterns: list[str]) -> bool:
    """`name` as `split_host` gives it, against exact names and `*.suffix` patterns."""
    if name == "localhost" or name.endswith(".localhost") or _is_ip_literal(name):
        return True
    for pattern in patterns:
        if pattern.startswith("*."):
            if name.endswith(pattern[1:]):
                return True
        elif name == pattern:
            return True
    return False


def _is_ip_literal(name: str) -> bool:
    bracketed = name.startswith("[") and name.endswith("]")
    try:
        address = ipaddress.ip_address(name[1:-1] if bracketed else name)
    except ValueError:
        return False
    return bracketed == (address.version == 6)  # IPv6 in a Host is always in brackets


class HostCheck:
    def __init__(self, app: ASGIApp, patterns: list[str] | None) -> None:
        """`patterns` from `allowed_hosts`; None lets every request through untouched."""
        self.app = app
        self.patterns = patterns

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.patterns is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = header(scope, b"host")
        name = split_host(raw.decode("latin-1"))[0] if raw else ""
        if host_allowed(name, self.patterns) or _public_and_not_from_a_browser(scope):
            await self.app(scope, receive, send)
            return
        await send_error(
            send,
            400,
            "host_not_allowed",
            f"this server does not answer to the host name {name!r}: add it to "
            "TAILWINDS_ALLOWED_HOSTS (without TAILWINDS_ADMIN_TOKEN, only localhost and IP "
            "addresses are served, which defeats DNS rebinding)",
        )


def _public_and_not_from_a_browser(scope: Scope) -> bool:
    if scope["method"] != "POST" or public_chatflow_id(scope["path"]) is None:
        return False
    return not header(scope, b"origin") and not header(scope, b"sec-fetch-site")
