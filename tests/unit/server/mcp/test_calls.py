"""A call's arguments become a Prediction API body; results and errors take the MCP
shapes with the Prediction API's codes."""

from __future__ import annotations

import orjson
import pytest

from tailwinds.errors import InvalidRequest, RateLimited
from tailwinds.server.mcp.calls import answer_result, error_result, prediction_body


def test_arguments_become_a_streamed_unresumable_prediction() -> None:
    body = orjson.loads(prediction_body({"question": "q", "chatId": "c", "vars": {"a": "b"}}))
    assert body == {
        "question": "q",
        "streaming": True,
        "resumeGraceSeconds": 0,
        "chatId": "c",
        "overrideConfig": {"vars": {"a": "b"}},
    }


def test_an_unknown_argument_is_named() -> None:
    with pytest.raises(InvalidRequest, match=r"arguments\.colour"):
        prediction_body({"question": "q", "colour": "red"})


def test_error_result_carries_the_code_and_status() -> None:
    result = error_result(RateLimited("slow down"))
    assert result.is_error
    assert result.structured_content == {
        "error": {"code": "rate_limited", "message": "slow down", "status": 429}
    }
    assert result.content[0].text == "rate_limited: slow down"


def test_answer_lists_the_chat_and_sources_as_text_too() -> None:
    sources = [{"pageContent": "Bishops move diagonally.", "metadata": {"source": "chess.md"}}]
    result = answer_result("Diagonally.", sources, {"chatId": "c1", "messageId": "m1"})
    assert [block.text for block in result.content] == [
        "Diagonally.",
        "chatId: c1\n[1] chess.md: Bishops move diagonally.",
    ]
    assert result.structured_content["sourceDocuments"] == sources
    assert result.structured_content["chatId"] == "c1"
