"""The Python SDK for Tailwinds' Prediction API: typed events, typed errors, timeouts,
and a stream reader that takes the bytes however they are cut.

    from tailwinds.client import Tailwinds

    with Tailwinds("http://127.0.0.1:3000") as client:
        with client.stream(chatflow_id, "Hello world!") as stream:
            for event in stream:
                if isinstance(event, Token):
                    print(event.text, end="", flush=True)
"""

from tailwinds.client._async import AsyncPredictionStream, AsyncTailwinds
from tailwinds.client._core import EventReader, Timeouts
from tailwinds.client._sync import PredictionStream, Tailwinds
from tailwinds.client.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    PredictionError,
    RateLimitError,
    ServerError,
    StreamProtocolError,
    StreamTimeout,
    TailwindsClientError,
)
from tailwinds.client.events import (
    Action,
    End,
    Error,
    Event,
    Metadata,
    Prediction,
    SourceDocuments,
    Start,
    Thinking,
    Token,
    Usage,
    UsedTools,
)

__all__ = [
    "APIError",
    "Action",
    "AsyncPredictionStream",
    "AsyncTailwinds",
    "AuthenticationError",
    "BadRequestError",
    "End",
    "Error",
    "Event",
    "EventReader",
    "Metadata",
    "NotFoundError",
    "PermissionDeniedError",
    "Prediction",
    "PredictionError",
    "PredictionStream",
    "RateLimitError",
    "ServerError",
    "SourceDocuments",
    "Start",
    "StreamProtocolError",
    "StreamTimeout",
    "Tailwinds",
    "TailwindsClientError",
    "Thinking",
    "Timeouts",
    "Token",
    "Usage",
    "UsedTools",
]
