"""Per-chatflow rate limits, in this process: a sliding window of request times and a
count of running predictions. Checked before the stream; a refusal is a 429 with
Retry-After."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from tailwinds.errors import RateLimited
from tailwinds.metrics import RATE_LIMITED


class RateLimiter:
    def __init__(self) -> None:
        self._recent: dict[str, deque[float]] = {}
        self._running: dict[str, int] = {}

    def admit(self, key: str, limit: dict[str, Any] | None) -> Callable[[], None]:
        """Count one prediction against `limit`; returns what to call when it ends."""
        if not limit:
            return _nothing
        requests = limit.get("requests")
        if requests:
            window_s = float(limit.get("windowS", 60))
            now = time.monotonic()
            recent = self._recent.setdefault(key, deque())
            while recent and recent[0] <= now - window_s:
                recent.popleft()
            if len(recent) >= requests:
                RATE_LIMITED.labels("requests").inc()
                retry = max(1, math.ceil(recent[0] + window_s - now))
                raise RateLimited(
                    f"this chatflow takes {requests} predictions per {window_s:g} s; "
                    f"try again in {retry} s",
                    retry_after_s=retry,
                )
            recent.append(now)
        concurrent = limit.get("concurrent")
        if not concurrent:
            return _nothing
        running = self._running.get(key, 0)
        if running >= concurrent:
            RATE_LIMITED.labels("concurrent").inc()
            raise RateLimited(
                f"this chatflow runs at most {concurrent} predictions at once; try again",
                retry_after_s=1,
            )
        self._running[key] = running + 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._running[key] -= 1

        return release


def _nothing() -> None:
    pass
