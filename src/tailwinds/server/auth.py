"""Who may call what: the admin token for management, a chatflow's API key for its
predictions. Every comparison of secrets is constant-time."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

from fastapi import Request

from tailwinds.errors import Forbidden, Unauthorized


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def same_secret(presented: str, expected: str) -> bool:
    """Constant time, whatever the lengths: the digests are compared, not the strings
    (`compare_digest` on strings of different lengths answers at once)."""
    return hmac.compare_digest(
        hashlib.sha256(presented.encode()).digest(), hashlib.sha256(expected.encode()).digest()
    )


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


async def require_admin(request: Request) -> None:
    """FastAPI dependency for every management route."""
    admin_token = request.app.state.tailwinds.settings.admin_token
    if admin_token:
        token = bearer_token(request.headers.get("authorization"))
        if token is None or not same_secret(token, admin_token):
            raise Unauthorized(
                "management calls need `Authorization: Bearer <TAILWINDS_ADMIN_TOKEN>`"
            )
        return
    client = request.client.host if request.client else None
    if not is_loopback(client):
        raise Forbidden(
            "TAILWINDS_ADMIN_TOKEN is not set, so management calls are accepted only from "
            "this machine; set it to manage Tailwinds remotely"
        )
