"""A queued prediction: what the API node decided, everything a worker needs to run it."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

import orjson


@dataclass(slots=True)
class Job:
    chatflow_id: str
    message_id: str
    chat_id: str
    session_id: str
    question: str
    # the conversation so far when the request carried it; None: the worker reads it
    history: list[tuple[str, str]] | None
    vars: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    grace_s: float = 0.0
    request_id: str | None = None
    # the API node took the chat's lease for this turn: the worker keeps and frees it
    chat_lease: bool = False
    asked_at: float | None = None  # when the API node admitted it, s since the epoch
    # the question's uploads, read already (engine/uploads.py's `uploads_json`)
    uploads: list[dict[str, str]] | None = None
    # the API node's trace context, a W3C traceparent (tailwinds.tracing): the worker's
    # spans join its trace
    trace: str | None = None
    # the API node that relays the run live: its frames go to that node's relay stream too
    # (`Keys.relay`); a worker of a version before it cannot read such a job
    relay: str | None = None

    def asked(self) -> datetime:
        """When it was asked (now, for a job of an API node that did not say)."""
        return datetime.fromtimestamp(self.asked_at, UTC) if self.asked_at else datetime.now(UTC)

    def dumps(self) -> bytes:
        # a shallow dict: orjson writes the lists and dicts as they are, where `asdict`
        # copied each deeply first (3 % of an API node's CPU in a short prediction)
        data = {name: getattr(self, name) for name in _FIELDS}
        for name in ("trace", "relay"):
            if data[name] is None:
                # unused: the job a worker of an earlier version can read too
                del data[name]
        return orjson.dumps(data)

    @classmethod
    def loads(cls, raw: bytes) -> Job:
        data = orjson.loads(raw)
        if data.get("history") is not None:
            data["history"] = [tuple(item) for item in data["history"]]
        return cls(**data)


_FIELDS = tuple(f.name for f in fields(Job))
