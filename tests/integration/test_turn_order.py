"""A chat's history is ordered by turn, never by which answer ended first, on SQLite and
PostgreSQL; and a chatflow keeps its `concurrentTurns` setting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tailwinds.messages import ChatMessage
from tailwinds.store.chatflows import ChatflowRepository
from tailwinds.store.db import Database
from tailwinds.store.messages import MessageRepository, StoredTurn
from tests.integration.test_store import run


def turn(question: str, answer: str, asked_at: datetime) -> StoredTurn:
    return StoredTurn(
        chatflow_id="cf",
        chat_id="c",
        session_id="c",
        question=question,
        message_id=f"m-{question}",
        answer=answer,
        status="complete",
        error=None,
        usage=None,
        asked_at=asked_at,
    )


def test_an_answer_that_ends_late_stays_with_its_question(database_url: str) -> None:
    async def scenario(db: Database) -> None:
        messages = MessageRepository(db)
        asked = datetime.now(UTC) - timedelta(seconds=2)
        # the second turn, asked 0.3 s after the first, ended (and is stored) first
        await messages.add_turn(turn("Q2", "A2", asked + timedelta(milliseconds=300)))
        await messages.add_turn(turn("Q1", "A1", asked))
        assert await messages.history("cf", "c", 10) == [
            ChatMessage("user", "Q1"),
            ChatMessage("assistant", "A1"),
            ChatMessage("user", "Q2"),
            ChatMessage("assistant", "A2"),
        ]
        listed = await messages.list_chat("cf", "c")
        assert [m["content"] for m in listed] == ["Q1", "A1", "Q2", "A2"]
        # the last turn alone is the later one, whole
        assert await messages.history("cf", "c", 1) == [
            ChatMessage("user", "Q2"),
            ChatMessage("assistant", "A2"),
        ]

    run(database_url, scenario)


def test_a_chatflow_keeps_its_concurrent_turns_setting(database_url: str) -> None:
    async def scenario(db: Database) -> None:
        chatflows = ChatflowRepository(db)
        made = await chatflows.create("x", {"nodes": []})
        assert made.concurrent_turns == "reject"
        await chatflows.update(made.id, {"concurrent_turns": "interrupt"})
        again = await chatflows.get(made.id)
        assert again is not None and again.concurrent_turns == "interrupt"
        assert again.as_json()["concurrentTurns"] == "interrupt"

    run(database_url, scenario)
