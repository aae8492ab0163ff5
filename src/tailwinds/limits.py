"""Rate limits per chatflow and per API key, in this process: a sliding window of request
times and a count of running predictions. Checked before the stream; a refusal is a 429
with Retry-After. (Queue mode counts in Redis instead: `transport/redis_limits.py`.)"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tailwinds.errors import RateLimited
from tailwinds.metrics import RATE_LIMITED

Scope = tuple[str, dict[str, Any] | None]  # what is counted ("chatflow:<id>"), its limit


MAX_WINDOW_S = 366 * 24 * 3600.0  # a year


class RateLimit(BaseModel):
    """At most `requests` predictions per `windowS` seconds, and at most `concurrent`
    running at once (either may be left out)."""

    model_config = ConfigDict(
        populate_by_name=True, extra="forbid", strict=True, allow_inf_nan=False
    )

    # bounded: stored as JSON (orjson: 64-bit integers, finite floats) and read back
    requests: int | None = Field(None, ge=1, le=1_000_000_000)
    window_s: float = Field(60, gt=0, le=MAX_WINDOW_S, alias="windowS")
    concurrent: int | None = Field(None, ge=1, le=1_000_000)


def refused_requests(requests: int, window_s: float, retry: int, what: str) -> RateLimited:
    RATE_LIMITED.labels("requests").inc()
    return RateLimited(
        f"{what} takes {requests} predictions per {window_s:g} s; try again in {retry} s",
        retry_after_s=retry,
    )


def refused_concurrent(concurrent: int, what: str) -> RateLimited:
    RATE_LIMITED.labels("concurrent").inc()
    return RateLimited(
        f"{what} runs at most {concurrent} predictions at once; try again", retry_after_s=1
    )


def describe(key: str) -> str:
    return "this API key" if key.startswith("key:") else "this chatflow"


class RateLimiter:
    def __init__(self) -> None:
        self._recent: dict[str, deque[float]] = {}
        self._running: dict[str, int] = {}

    async def admit_all(self, scopes: list[Scope]) -> Callable[[], None]:
        """Count one prediction against every scope's limit, or against none if one
        refuses (`RateLimited`); returns what to call when the prediction ends."""
        now = time.monotonic()
        for key, limit in scopes:
            self._check(key, limit, now)
        return release_all([self._take(key, limit, now) for key, limit in scopes])

    def admit(self, key: str, limit: dict[str, Any] | None) -> Callable[[], None]:
        """`admit_all` of one scope."""
        now = time.monotonic()
        self._check(key, limit, now)
        return self._take(key, limit, now)

    def _check(self, key: str, limit: dict[str, Any] | None, now: float) -> None:
        if not limit:
            return
        requests = limit.get("requests")
        if requests:
            window_s = float(limit.get("windowS", 60))
            recent = self._recent.setdefault(key, deque())
            while recent and recent[0] <= now - window_s:
                recent.popleft()
            if len(recent) >= requests:
                retry = max(1, math.ceil(recent[0] + window_s - now))
                raise refused_requests(requests, window_s, retry, describe(key))
        concurrent = limit.get("concurrent")
        if concurrent and self._running.get(key, 0) >= concurrent:
            raise refused_concurrent(concurrent, describe(key))

    def _take(self, key: str, limit: dict[str, Any] | None, now: float) -> Callable[[], None]:
        if not limit:
            return nothing
        if limit.get("requests"):
            self._recent[key].append(now)
        if not limit.get("concurrent"):
            return nothing
        self._running[key] = self._running.get(key, 0) + 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._running[key] -= 1

        return release


def nothing() -> None:
    """The release of a prediction no limit counted."""


def release_all(releases: list[Callable[[], None]]) -> Callable[[], None]:
    def release() -> None:
        for one in releases:
            one()

    return release


class KeyFailures:
    """Failed API key checks per client address over the last minute. Past `per_minute`,
    `check` refuses (429 with Retry-After) whatever would cost a hash, so guessing keys is
    slow and cannot keep the hashing threads busy. In this process (each API node counts
    its own); at most `MAX_CLIENTS` addresses are remembered, the quietest forgotten."""

    MAX_CLIENTS = 10_000
    WINDOW_S = 60.0
    PAUSE_STEP_S = 0.1
    MAX_PAUSE_S = 1.0

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._recent: OrderedDict[str, deque[float]] = OrderedDict()

    def check(self, client: str | None) -> None:
        """Raises `RateLimited` when `client` failed `per_minute` times in the last minute."""
        recent = self._recent.get(client or "")
        if recent is None or self.per_minute <= 0:
            return
        now = time.monotonic()
        while recent and recent[0] <= now - self.WINDOW_S:
            recent.popleft()
        if len(recent) >= self.per_minute:
            RATE_LIMITED.labels("key_failures").inc()
            retry = max(1, math.ceil(recent[0] + self.WINDOW_S - now))
            raise RateLimited(
                f"too many wrong API keys from this address ({len(recent)} in the last "
                f"minute); try again in {retry} s",
                retry_after_s=retry,
            )

    async def attempt(self, client: str | None) -> Callable[[], None]:
        """`check`, then `failed`: a check about to hash counts as a failure until it
        proves right (call what this returns then). A refusal comes after `pause`."""
        try:
            self.check(client)
        except RateLimited:
            await self.pause(client)
            raise
        return self.failed(client)

    async def pause(self, client: str | None) -> None:
        """Wait before answering a failure, once `client` has failed more than half its
        limit: 100 ms per failure past that half, 1 s at most. A timer, no work: one
        client's wrong keys cannot come faster than its connections allow, whatever they
        cost to refuse; a typo or two is answered at once."""
        recent = self._recent.get(client or "")
        if recent is None or self.per_minute <= 0:
            return
        past_half = len(recent) - self.per_minute // 2
        if past_half > 0:
            await asyncio.sleep(min(self.MAX_PAUSE_S, self.PAUSE_STEP_S * past_half))

    def failed(self, client: str | None) -> Callable[[], None]:
        """Count a failure of `client` now; returns what takes it back (for a check
        counted before its outcome, so that a burst cannot start more than the limit)."""
        key = client or ""
        recent = self._recent.get(key)
        if recent is None:
            if len(self._recent) >= self.MAX_CLIENTS:
                self._recent.popitem(last=False)
            recent = self._recent[key] = deque(maxlen=max(self.per_minute, 1))
        stamp = time.monotonic()
        recent.append(stamp)
        self._recent.move_to_end(key)

        def forgive() -> None:
            if stamp in recent:
                recent.remove(stamp)

        return forgive
