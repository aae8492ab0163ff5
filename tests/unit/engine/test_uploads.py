"""A question's uploads on the messages a model is sent, and on a queue job."""

from __future__ import annotations

from tailwinds.engine.context import Turn
from tailwinds.engine.uploads import uploads_from_json, uploads_json, with_uploads
from tailwinds.messages import ChatMessage, FileText, ImagePart

UPLOADS = [ImagePart("image/png", "AAAA"), FileText("a.txt", "alpha")]


def turn(question: str = "q?") -> Turn:
    return Turn(
        question=question, chat_id="c", session_id="c", message_id="m", uploads=list(UPLOADS)
    )


def test_on_the_user_turn_that_asks_the_question() -> None:
    messages = [
        ChatMessage("system", "s"),
        ChatMessage("user", "earlier"),
        ChatMessage("assistant", "a"),
        ChatMessage("user", "q?"),
        ChatMessage("assistant", "", tool_calls=()),
    ]
    out = with_uploads(messages, turn())
    assert out[3] == ChatMessage("user", "q?\n\n--- a.txt ---\nalpha", images=(UPLOADS[0],))
    assert out[:3] == messages[:3] and messages[3].images == ()


def test_not_on_another_request_of_the_run() -> None:
    messages = [ChatMessage("system", "follow-ups"), ChatMessage("user", "Question: other")]
    assert with_uploads(messages, turn()) is messages


def test_a_queue_job_carries_them() -> None:
    assert uploads_from_json(uploads_json(UPLOADS)) == UPLOADS
    assert uploads_from_json(None) == []
