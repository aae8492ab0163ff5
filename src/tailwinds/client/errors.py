"""What the SDK raises. Errors before a stream carry the server's message, code and HTTP
status; an `error` event becomes `PredictionError` where it arrives."""

from __future__ import annotations


class TailwindsClientError(Exception):
    """Base of everything the SDK raises."""


class APIError(TailwindsClientError):
    def __init__(self, message: str, *, status: int, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code

    def __str__(self) -> str:
        return f"{self.status} {self.code or ''}: {self.message}".replace("  ", " ")


class BadRequestError(APIError):
    """400, 413 or 422: the request names what is wrong."""


class AuthenticationError(APIError):
    """401: a missing or wrong API key or admin token."""


class PermissionDeniedError(APIError):
    """403."""


class NotFoundError(APIError):
    """404: no such chatflow (or other resource)."""


class RateLimitError(APIError):
    """429: try again after `retry_after` seconds."""

    def __init__(
        self, message: str, *, status: int, code: str | None, retry_after: float | None
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx before the stream started."""


class PredictionError(TailwindsClientError):
    """The prediction failed after its stream began (an `error` event)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class StreamTimeout(TailwindsClientError):
    """Nothing came within the time allowed: to connect, for the first event, or between
    two events."""


class StreamProtocolError(TailwindsClientError):
    """The server's bytes were not a valid event stream."""
