"""Logging set-up for the `tailwinds` command: text or JSON lines, secrets redacted from
every record, whoever logged it."""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar

from tailwinds import tracing
from tailwinds.redaction import redact

# the request a log line belongs to: set per HTTP request, and by a worker per job, so one
# prediction's lines can be found across the API node and the worker
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


class WithRequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        request_id = REQUEST_ID.get()
        record.request_id = f" [{request_id}]" if request_id else ""
        record.requestId = request_id
        return True


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "requestId", None)
        if request_id:
            entry["requestId"] = request_id
        ids = tracing.log_ids()  # None unless tracing is on
        if ids is not None:
            entry["traceId"], entry["spanId"] = ids
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, log_format: str = "text") -> None:
    root = logging.getLogger()
    root.handlers[:] = [formatted(logging.StreamHandler(sys.stderr), log_format)]
    root.setLevel(level.upper())


def formatted(handler: logging.Handler, log_format: str = "text") -> logging.Handler:
    """`handler` writing our lines: `text` or `json`, secrets redacted, request ids."""
    handler.addFilter(RedactSecrets())
    handler.addFilter(WithRequestId())
    if log_format == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s%(request_id)s: %(message)s")
        )
    return handler
