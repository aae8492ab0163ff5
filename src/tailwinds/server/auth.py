"""Who may call what: the admin token for management, a chatflow's API key for its
predictions. Every comparison of secrets is constant-time."""

from __future__ import annotations

import ipaddress

from fastapi import Request

from tailwinds.errors import Forbidden, Unauthorized
from tailwinds.runs.bearer import bearer_token, same_secret

__all__ = ["bearer_token", "is_loopback", "require_admin", "same_secret"]


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
