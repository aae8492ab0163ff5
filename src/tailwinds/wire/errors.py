"""The model client's errors. Imports nothing of ours."""

from __future__ import annotations


class WireError(Exception):
    """The connection failed, or what came back is not HTTP."""


class WireTooLarge(WireError):
    """The answer passed one of the client's bounds (head size, header count, inflated
    size)."""


class ConnectionClosed(WireError):
    """The server closed the connection before the answer was whole. `maybe_processed`:
    the request had been sent, so the server may have acted on it."""

    maybe_processed = False
