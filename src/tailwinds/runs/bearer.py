"""API keys as presented: the bearer token of an `Authorization` header (RFC 6750 section
2.1), compared with a stored secret in constant time."""

from __future__ import annotations

import hashlib
import hmac


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
