"""The one tree of Tailwinds errors. Imports nothing of ours.

    TailwindsError
    ├── RequestError            the caller's mistake, answered before any stream
    │   ├── InvalidRequest      400
    │   │   └── UnreadableFile  422
    │   ├── Unauthorized        401
    │   ├── Forbidden           403
    │   ├── ChatflowNotFound    404
    │   ├── NotFound            404
    │   │   └── ActionNotFound  404
    │   ├── ChatBusy            409
    │   ├── ActionClosed        409
    │   ├── PayloadTooLarge     413
    │   └── RateLimited         429
    │       └── ServerBusy      503
    ├── FlowError               the flow itself failed while running
    ├── ProviderError           the model server failed us
    │   ├── ProviderAuth, ProviderRateLimited, ProviderUnavailable,
    │   ├── ProviderRejected, ProviderBadResponse
    │   ├── AnswerTooLong       past TAILWINDS_MAX_ANSWER_CHARS (or tool-call arguments' cap)
    │   └── ProviderTimeout
    ├── RunCancelled            aborted by a caller
    ├── StorageFailed           the answer was given but its turn could not be stored
    └── ServerShutdown          the server stopped before the answer was done

Each class carries the HTTP `status` used before a stream starts and the short `code`
that an `error` event carries once it has.
"""

from __future__ import annotations

from typing import ClassVar


class TailwindsError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)

    @property
    def message(self) -> str:
        return str(self.args[0])


class RequestError(TailwindsError):
    status = 400
    code = "bad_request"


class InvalidRequest(RequestError):
    status = 400
    code = "invalid_request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class UnreadableFile(InvalidRequest):
    """A file (or fetched page) whose reading was stopped: it took too long, needed too
    much memory, or crashed its reader. The message names it."""

    status = 422
    code = "unreadable_file"


class Unauthorized(RequestError):
    """A valid API key is required: send `Authorization: Bearer <key>`."""

    status = 401
    code = "unauthorized"


class Forbidden(RequestError):
    status = 403
    code = "forbidden"


class NotFound(RequestError):
    status = 404
    code = "not_found"


class ChatflowNotFound(NotFound):
    code = "chatflow_not_found"

    def __init__(self, chatflow_id: str) -> None:
        super().__init__(f"chatflow {chatflow_id!r} not found")


class StreamNotFound(NotFound):
    """No stream of that message to resume: it never asked to be resumable, or it ended
    longer ago than its retention."""

    code = "stream_not_found"


class ActionNotFound(NotFound):
    """No tool call of this chatflow waits for a decision under that action id."""

    code = "action_not_found"


class ActionClosed(RequestError):
    """The action was decided already, or it expired, or its run ended."""

    status = 409
    code = "action_closed"


class ChatBusy(RequestError):
    """The chat is answering another turn: one turn runs at a time per chat (chatflow and
    session), unless the chatflow's `concurrentTurns` says to queue or interrupt."""

    status = 409
    code = "chat_busy"


class PayloadTooLarge(RequestError):
    status = 413
    code = "payload_too_large"


class RateLimited(RequestError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ServerBusy(RateLimited):
    """The workers for this kind of work (reading files, hashing keys, ...) are all taken
    and their queue is full: try again after Retry-After."""

    status = 503
    code = "server_busy"


class FlowError(TailwindsError):
    status = 500
    code = "flow_error"


class ProviderError(TailwindsError):
    status = 502
    code = "provider_error"


class ProviderAuth(ProviderError):
    code = "provider_auth"


class ProviderRateLimited(ProviderError):
    code = "provider_rate_limited"


class ProviderUnavailable(ProviderError):
    code = "provider_unavailable"


class ProviderRejected(ProviderError):
    code = "provider_rejected"


class ProviderBadResponse(ProviderError):
    code = "provider_bad_response"


class AnswerTooLong(ProviderError):
    """The model's answer passed the server's cap (`TAILWINDS_MAX_ANSWER_CHARS`): what came
    before the cap was streamed and is stored; the rest was not read."""

    code = "answer_too_long"


class ProviderTimeout(ProviderError):
    status = 504
    code = "provider_timeout"


class RunCancelled(TailwindsError):
    """The prediction was aborted."""

    status = 409
    code = "aborted"


class StorageFailed(TailwindsError):
    """The answer was given, but the database refused its turn even on its own: the
    chat's history does not hold this question and answer. Ask again to have it kept."""

    status = 500
    code = "storage_failed"


class ServerShutdown(TailwindsError):
    """The server is shutting down: the prediction was stopped. Ask again."""

    status = 503
    code = "server_shutdown"


class QueueFull(RateLimited):
    """Queue mode: too many jobs waiting or running, for this chatflow or in all."""

    code = "queue_full"


class WorkerLost(TailwindsError):
    """Queue mode: the worker running the prediction died after it had sent part of it."""

    status = 500
    code = "worker_lost"


class TransportLost(TailwindsError):
    """Queue mode: Redis, which carries the events, went away mid-stream."""

    status = 503
    code = "transport_lost"


def _codes(cls: type[TailwindsError]) -> dict[str, type[TailwindsError]]:
    found = {cls.code: cls}
    for sub in cls.__subclasses__():
        found.update(_codes(sub))
    return found


def error_from_code(code: str, message: str) -> TailwindsError:
    """Rebuild the error an `error` event reports, as the class its code names. The classes
    are looked up when asked (an error path), not at import: nodes define errors of their
    own (`agent_limit`) after this module is loaded."""
    cls = _codes(TailwindsError).get(code, TailwindsError)
    error = cls.__new__(cls)
    TailwindsError.__init__(error, message)
    return error
