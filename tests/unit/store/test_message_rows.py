"""A turn's rows store whatever usage they are given: a count that is not an int in
0..2**31-1 is left out (None), never a reason the turn cannot be stored."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tailwinds.messages import Usage
from tailwinds.store.messages import StoredTurn, _rows


def turn(usage: Usage | None) -> StoredTurn:
    return StoredTurn(
        chatflow_id="f",
        chat_id="c",
        session_id="s",
        question="q",
        message_id="m",
        answer="a",
        status="complete",
        error=None,
        usage=usage,
        asked_at=datetime.now(UTC),
    )


@pytest.mark.parametrize("junk", ["12", 1.5, 2**31, -1, 10**20, True, None, [3]])
def test_usage_counts_not_fit_for_their_column_are_left_out(junk: Any) -> None:
    answer = _rows(turn(Usage(junk, 3, junk)))[1]
    assert (answer["prompt_tokens"], answer["completion_tokens"], answer["total_tokens"]) == (
        None,
        3,
        None,
    )


def test_usage_counts_kept_when_valid() -> None:
    answer = _rows(turn(Usage(0, 2**31 - 1, 7)))[1]
    assert (answer["prompt_tokens"], answer["completion_tokens"], answer["total_tokens"]) == (
        0,
        2**31 - 1,
        7,
    )
