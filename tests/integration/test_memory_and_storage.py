"""Through the Prediction API: memory an Anthropic model takes after empty and stopped
answers, caps on what a caller sends, text PostgreSQL refuses, and a turn the database
will not store reported before `end`."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tailwinds.store.storable import storable_key
from tests.conftest import RunningServer, start_server
from tests.mock_openai import MockOpenAI
from tests.sse_frames import check_order, parse_frames, tokens_of


def anthropic_flow(server: RunningServer, mock: MockOpenAI, model: str = "claude-test") -> str:
    node = {
        "id": "m",
        "type": "chatAnthropic",
        "inputs": {"model": model, "baseUrl": mock.root_url, "apiKey": "sk-ant-test"},
    }
    return server.create_chatflow({"nodes": [node]}, allowedOverrides=["sessionId", "vars"])["id"]


def predict(
    server: RunningServer, chatflow_id: str, question: str, **body: Any
) -> requests.Response:
    return requests.post(
        f"{server.url}/api/v1/predictions/{chatflow_id}",
        json={"question": question, **body},
        timeout=30,
    )


def stream(server: RunningServer, chatflow_id: str, question: str, **body: Any) -> list[Any]:
    response = predict(server, chatflow_id, question, streaming=True, **body)
    assert response.status_code == 200, response.text
    frames = parse_frames(response.content)
    check_order(frames)
    return frames


def errors(frames: list[Any]) -> list[dict[str, Any]]:
    return [data for name, data in frames if name == "error"]


def messages_sent(mock: MockOpenAI, question: str) -> list[dict[str, Any]]:
    return mock.find(question).body["messages"]


def stored(server: RunningServer, chatflow_id: str, chat_id: str) -> list[dict[str, Any]]:
    response = requests.get(
        f"{server.url}/api/v1/chatmessage/{chatflow_id}", params={"chatId": chat_id}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_anthropic_chat_goes_on_after_an_empty_answer(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    flow = anthropic_flow(sqlite_server, mock_llm)
    first = stream(sqlite_server, flow, "tokens:[]", chatId="empty-answer")
    assert tokens_of(first) == "" and not errors(first)
    for question in ("second after empty", "third after empty"):
        frames = stream(sqlite_server, flow, question, chatId="empty-answer")
        assert not errors(frames), errors(frames)
        assert tokens_of(frames) == f"You said: {question}"
    assert messages_sent(mock_llm, "third after empty") == [
        {"role": "user", "content": "second after empty"},
        {"role": "assistant", "content": "You said: second after empty"},
        {"role": "user", "content": "third after empty"},
    ]


def test_anthropic_chat_goes_on_after_stop_before_the_first_token(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    flow = anthropic_flow(sqlite_server, mock_llm, "slowstart:0.5")
    seen = len(mock_llm.records)
    result: dict[str, list[Any]] = {}
    asking = threading.Thread(
        target=lambda: result.setdefault(
            "frames", stream(sqlite_server, flow, "stopped at once", chatId="stopped")
        )
    )
    asking.start()
    deadline = time.monotonic() + 10
    while not any(
        r.body["messages"][-1]["content"] == "stopped at once" for r in mock_llm.records[seen:]
    ):
        assert time.monotonic() < deadline, "the model was never asked"
        time.sleep(0.02)
    abort = requests.post(
        f"{sqlite_server.url}/api/v1/predictions/{flow}/abort",
        json={"chatId": "stopped"},
        timeout=10,
    )
    assert abort.json()["aborted"] == 1
    asking.join(30)
    assert [e["code"] for e in errors(result["frames"])] == ["aborted"]
    answer = stored(sqlite_server, flow, "stopped")[1]
    assert (answer["content"], answer["status"]) == ("", "aborted")
    frames = stream(sqlite_server, flow, "asked after the stop", chatId="stopped")
    assert not errors(frames), errors(frames)
    assert messages_sent(mock_llm, "asked after the stop") == [
        {"role": "user", "content": "asked after the stop"}
    ]


def test_a_client_history_with_empty_and_repeated_turns_is_sent_well_formed(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    flow = anthropic_flow(sqlite_server, mock_llm)
    history = [
        {"role": "userMessage", "content": "q1"},
        {"role": "apiMessage", "content": ""},
        {"role": "userMessage", "content": "q1 again"},
        {"role": "apiMessage", "content": "a1"},
        {"role": "apiMessage", "content": "   "},
        {"role": "userMessage", "content": "q2, which failed"},
    ]
    frames = stream(sqlite_server, flow, "client history", history=history)
    assert not errors(frames), errors(frames)
    assert messages_sent(mock_llm, "client history") == [
        {"role": "user", "content": "q1\n\nq1 again"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "client history"},
    ]


LONG = "x" * 100_001


@pytest.mark.parametrize(
    ("body", "field", "expected"),
    [
        ({"overrideConfig": {"sessionId": "s" * 1025}}, "overrideConfig.sessionId", "at most 1024"),
        ({"overrideConfig": {"sessionId": "a\x00b"}}, "overrideConfig.sessionId", "control"),
        ({"overrideConfig": {"sessionId": 7}}, "overrideConfig.sessionId", "expected a string"),
        ({"chatId": "a\x00b"}, "chatId", "control"),
        ({"chatId": "c" * 256}, "chatId", "at most 255"),
        (
            {"overrideConfig": {"vars": {f"v{i}": "x" for i in range(101)}}},
            "overrideConfig.vars",
            "at most 100 variables",
        ),
        (
            {"overrideConfig": {"vars": {"n" * 101: "x"}}},
            "overrideConfig.vars",
            "names of 1 to 100",
        ),
        ({"overrideConfig": {"vars": {"v": LONG}}}, "overrideConfig.vars.v", "at most 100000"),
        ({"overrideConfig": {"vars": {"v": [LONG]}}}, "overrideConfig.vars.v", "bytes of JSON"),
        (
            {"history": [{"role": "userMessage", "content": LONG}]},
            "history.0.content",
            "at most 100000",
        ),
        (
            {"history": [{"role": "userMessage", "content": "h"}] * 1001},
            "history",
            "at most 1000",
        ),
        ({"question": LONG}, "question", "at most 100000"),
    ],
)
def test_caller_fields_over_their_caps_are_refused_before_the_stream(
    sqlite_server: RunningServer,
    mock_llm: MockOpenAI,
    body: dict[str, Any],
    field: str,
    expected: str,
) -> None:
    flow = anthropic_flow(sqlite_server, mock_llm)
    seen = len(mock_llm.records)
    response = predict(sqlite_server, flow, body.pop("question", "q"), streaming=True, **body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error.startswith(field + ":") or f"{field}:" in error, error
    assert expected in error, error
    assert len(mock_llm.records) == seen


def test_caps_at_their_limit_are_accepted(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    flow = anthropic_flow(sqlite_server, mock_llm)
    session = "s" * 1024  # longer than its column: stored under a digest of the whole
    frames = stream(
        sqlite_server,
        flow,
        "at the caps",
        chatId="c" * 255,
        overrideConfig={"sessionId": session, "vars": {f"v{i}": "x" for i in range(100)}},
    )
    assert not errors(frames)
    assert [m["sessionId"] for m in stored(sqlite_server, flow, "c" * 255)] == [
        storable_key(session)
    ] * 2


def test_text_postgresql_refuses_is_stored(server: RunningServer, mock_llm: MockOpenAI) -> None:
    flow = server.model_chatflow(mock_llm.base_url)
    question = "a NUL \x00 here, and U+FFFF \uffff"
    frames = stream(server, flow, question, chatId="nul-chat")
    assert not errors(frames)
    contents = [m["content"] for m in stored(server, flow, "nul-chat")]
    assert contents == [
        "a NUL \ufffd here, and U+FFFF \uffff",
        "You said: a NUL \x00 here, and U+FFFF \uffff".replace("\x00", "\ufffd"),
    ]
    # a chat id no column can hold is a 400, on the listing route too it is no 500
    assert predict(server, flow, "hi", chatId="a\x00b").status_code == 400
    assert stored(server, flow, "a\x00b") == []


def test_a_turn_the_database_refuses_is_reported_before_end(
    tmp_path: Path, mock_llm: MockOpenAI
) -> None:
    home = tmp_path / "home"
    db = home / "tailwinds.db"
    server = start_server(home, f"sqlite+aiosqlite:///{db}")
    try:
        flow = server.model_chatflow(mock_llm.base_url)
        with sqlite3.connect(db) as conn:
            conn.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON chat_messages WHEN NEW.content LIKE "
                "'%refuse-me%' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
            )
        frames = stream(server, flow, "refuse-me please", chatId="refused")
        assert tokens_of(frames) == "You said: refuse-me please"
        assert [name for name, _ in frames][-2:] == ["error", "end"]
        assert errors(frames)[0]["code"] == "storage_failed"
        assert stored(server, flow, "refused") == []
        # the other chats go on being stored
        assert not errors(stream(server, flow, "fine", chatId="kept"))
        assert len(stored(server, flow, "kept")) == 2
        # not streaming: the same failure, as a status
        response = predict(server, flow, "refuse-me again")
        assert response.status_code == 500
        assert response.json()["code"] == "storage_failed"
        text = requests.get(f"{server.url}/metrics", timeout=10).text
        assert "tailwinds_turns_not_stored_total 2.0" in text, text
        assert "refuse-me" not in server.log()  # the log names the turn, not its text
    finally:
        server.stop()


def test_a_sub_chat_of_a_long_chat_id_is_stored_and_remembered(
    server: RunningServer, mock_llm: MockOpenAI
) -> None:
    echo = server.model_chatflow(mock_llm.base_url)
    tool = {"id": "sub", "type": "chatflowTool", "inputs": {"chatflowId": echo, "name": "ask"}}
    nodes = [
        {
            "id": "chat_0",
            "type": "chatOpenAI",
            "inputs": {"model": "agent", "baseUrl": mock_llm.base_url},
        },
        {"id": "agent_0", "type": "toolAgent", "inputs": {}},
        tool,
    ]
    edges = [
        {"source": "chat_0", "target": "agent_0", "targetInput": "model"},
        {"source": "sub", "target": "agent_0", "targetInput": "tools"},
    ]
    agent = server.create_chatflow({"nodes": nodes, "edges": edges})["id"]
    chat_id = "c" * 255  # the sub-chat's id, `<chatId>:sub`, is longer than its column
    for question in ("first sub question", "second sub question"):
        call = "call:" + json.dumps([["ask", {"question": question}]])
        assert not errors(stream(server, agent, call, chatId=chat_id))
    sub_chat = [m["content"] for m in stored(server, echo, f"{chat_id}:sub")]
    assert sub_chat == [
        "first sub question",
        "You said: first sub question",
        "second sub question",
        "You said: second sub question",
    ]
    # the sub-chat's memory was read back for the second question
    sent = next(
        r.body["messages"]
        for r in reversed(mock_llm.records)
        if r.body["messages"][-1]["content"] == "second sub question"
    )
    assert sent[:2] == [
        {"role": "user", "content": "first sub question"},
        {"role": "assistant", "content": "You said: first sub question"},
    ]
