"""Failed API key checks are counted per client address: past the limit in a minute, a 429
with Retry-After; a check that proves right is taken back; other addresses are not held."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from tailwinds.errors import RateLimited
from tailwinds.limits import KeyFailures


def test_past_the_limit_a_client_gets_429_with_retry_after() -> None:
    failures = KeyFailures(per_minute=3)
    for _ in range(3):
        failures.check("198.51.100.7")
        failures.failed("198.51.100.7")
    with pytest.raises(RateLimited) as refused:
        failures.check("198.51.100.7")
    assert refused.value.status == 429
    assert 1 <= refused.value.retry_after_s <= 60
    failures.check("198.51.100.8")  # another address


def test_a_check_that_proves_right_is_taken_back() -> None:
    failures = KeyFailures(per_minute=2)
    failures.failed("198.51.100.7")
    forgive = failures.failed("198.51.100.7")
    forgive()
    failures.check("198.51.100.7")


def test_the_addresses_remembered_are_bounded() -> None:
    failures = KeyFailures(per_minute=1)
    failures.MAX_CLIENTS = 3
    for n in range(10):
        failures.failed(f"10.0.0.{n}")
    assert len(failures._recent) == 3
    with pytest.raises(RateLimited):
        failures.check("10.0.0.9")


def test_failures_are_answered_after_a_pause_that_grows(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr("tailwinds.limits.asyncio", SimpleNamespace(sleep=sleep))
    failures = KeyFailures(per_minute=30)

    async def main() -> None:
        for _ in range(25):
            await failures.attempt("198.51.100.7")
            await failures.pause("198.51.100.7")

    asyncio.run(main())
    # the first half of the limit at once (a typo is no attack), then 100 ms a failure more
    assert waits[0] == pytest.approx(0.1) and waits[1] == pytest.approx(0.2)
    assert len(waits) == 25 - 15
    assert waits[-1] == KeyFailures.MAX_PAUSE_S  # capped


def test_an_attempt_past_the_limit_is_refused_after_its_pause(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr("tailwinds.limits.asyncio", SimpleNamespace(sleep=sleep))
    failures = KeyFailures(per_minute=4)

    async def main() -> None:
        forgive = await failures.attempt("198.51.100.7")
        forgive()  # the key proved right: not a failure
        for _ in range(4):
            await failures.attempt("198.51.100.7")
        with pytest.raises(RateLimited):
            await failures.attempt("198.51.100.7")

    asyncio.run(main())
    assert waits == [pytest.approx(0.2)]  # only the refusal waited: 2 past half of 4
