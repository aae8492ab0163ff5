"""The in-process rate limiter: a sliding window of requests and a count of running
predictions, per chatflow and per API key, on a clock the test moves."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from tailwinds import limits
from tailwinds.errors import RateLimited
from tailwinds.limits import RateLimit, RateLimiter


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The limiter's monotonic clock, as a one-item list the test sets."""
    now = [1000.0]
    monkeypatch.setattr(limits, "time", SimpleNamespace(monotonic=lambda: now[0]))
    return now


def test_requests_in_a_sliding_window(clock: list[float]) -> None:
    limiter = RateLimiter()
    limit = {"requests": 2, "windowS": 10}
    limiter.admit("chatflow:a", limit)
    clock[0] += 4
    limiter.admit("chatflow:a", limit)
    with pytest.raises(RateLimited) as refused:
        limiter.admit("chatflow:a", limit)
    # the oldest request leaves the window 6 s from now
    assert refused.value.retry_after_s == 6
    assert refused.value.status == 429 and refused.value.code == "rate_limited"
    assert "this chatflow takes 2 predictions per 10 s" in refused.value.message
    limiter.admit("chatflow:b", limit)  # another scope counts on its own
    clock[0] += 6  # the first request is now exactly a window old: out of it
    limiter.admit("chatflow:a", limit)
    with pytest.raises(RateLimited):
        limiter.admit("chatflow:a", limit)


def test_retry_after_is_a_whole_second_at_least(clock: list[float]) -> None:
    limiter = RateLimiter()
    limit = {"requests": 1, "windowS": 0.5}
    limiter.admit("key:k", limit)
    clock[0] += 0.4
    with pytest.raises(RateLimited) as refused:
        limiter.admit("key:k", limit)
    assert refused.value.retry_after_s == 1
    assert refused.value.message.startswith("this API key takes 1 predictions per 0.5 s")


def test_concurrent_predictions_are_counted_until_released(clock: list[float]) -> None:
    limiter = RateLimiter()
    limit = {"concurrent": 2}
    first = limiter.admit("chatflow:a", limit)
    second = limiter.admit("chatflow:a", limit)
    with pytest.raises(RateLimited, match="at most 2 predictions at once") as refused:
        limiter.admit("chatflow:a", limit)
    assert refused.value.retry_after_s == 1
    first()
    first()  # a release called twice counts once
    third = limiter.admit("chatflow:a", limit)
    with pytest.raises(RateLimited):
        limiter.admit("chatflow:a", limit)
    second()
    third()
    assert limiter._running["chatflow:a"] == 0


def test_no_limit_counts_nothing(clock: list[float]) -> None:
    limiter = RateLimiter()
    for _ in range(100):
        limiter.admit("chatflow:a", None)()
        limiter.admit("chatflow:a", {})()
    assert limiter._recent == {} and limiter._running == {}


def test_all_scopes_or_none(clock: list[float]) -> None:
    """A prediction counted against the chatflow and the key; when the key refuses, the
    chatflow's running count is given back."""
    limiter = RateLimiter()
    scopes = [("chatflow:a", {"concurrent": 5}), ("key:k", {"concurrent": 1})]

    async def main() -> None:
        release = await limiter.admit_all(scopes)
        with pytest.raises(RateLimited, match="this API key"):
            await limiter.admit_all(scopes)
        assert limiter._running == {"chatflow:a": 1, "key:k": 1}
        release()
        assert limiter._running == {"chatflow:a": 0, "key:k": 0}

    asyncio.run(main())


def test_a_refused_prediction_takes_no_place_in_any_request_window(clock: list[float]) -> None:
    limiter = RateLimiter()
    scopes = [("chatflow:a", {"requests": 2, "windowS": 60}), ("key:k", {"concurrent": 1})]

    async def main() -> None:
        await limiter.admit_all(scopes)  # held: the key's one place is taken
        with pytest.raises(RateLimited):
            await limiter.admit_all(scopes)
        # one prediction was admitted in the window: one more must be
        limiter.admit("chatflow:a", {"requests": 2, "windowS": 60})

    asyncio.run(main())


def test_the_limit_as_a_caller_gives_it() -> None:
    assert RateLimit.model_validate({"requests": 5, "windowS": 2}).window_s == 2
    assert RateLimit.model_validate({"concurrent": 1}).requests is None
    for bad in ({"requests": 0}, {"windowS": 0}, {"concurrent": 0}, {"burst": 1}):
        with pytest.raises(ValidationError):
            RateLimit.model_validate(bad)
