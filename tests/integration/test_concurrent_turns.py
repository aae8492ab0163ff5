"""One turn at a time per chat (local mode): a second turn of a running chat is refused with
409 `chat_busy` before any stream, or, as the chatflow's `concurrentTurns` says, waits for
the running turn or interrupts it; the history is ordered by turn whatever the setting."""

from __future__ import annotations

import json
import re

import requests

from tests.conftest import RunningServer
from tests.integration.test_agents import agent_flow
from tests.mock_openai import MockOpenAI
from tests.sse_frames import check_order, parse_frames, tokens_of
from tests.turns import TurnInFlight, ask, slow_answer, slow_question, stored


def paced_chatflow(server: RunningServer, mock_llm: MockOpenAI, **fields: object) -> str:
    node = {
        "id": "chat_0",
        "type": "chatOpenAI",
        "inputs": {"model": "paced:0.1", "baseUrl": mock_llm.base_url},
    }
    return server.create_chatflow({"nodes": [node], "edges": []}, **fields)["id"]


def chat_busy_count(url: str) -> float:
    metrics = requests.get(f"{url}/metrics", timeout=10).text
    return float(re.search(r"^tailwinds_chat_busy_total (\S+)$", metrics, re.M)[1])  # type: ignore[index]


def test_a_second_turn_of_a_running_chat_is_refused_on_every_prediction_route(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    url = sqlite_server.url
    chatflow_id = paced_chatflow(sqlite_server, mock_llm)
    refused_before = chat_busy_count(url)
    first = TurnInFlight(url, chatflow_id, slow_question("r"), "busy").started()
    for path in ("predictions", "prediction"):  # ours and Flowise's spelling
        for streaming in (True, False):
            refused = requests.post(
                f"{url}/api/v1/{path}/{chatflow_id}",
                json={"question": "second", "chatId": "busy", "streaming": streaming},
                timeout=10,
            )
            assert refused.status_code == 409, refused.text
            assert refused.headers["content-type"].startswith("application/json")
            assert refused.json()["code"] == "chat_busy"
            assert "concurrentTurns" in refused.json()["error"]
    assert chat_busy_count(url) == refused_before + 4
    # other chats of the chatflow are not held up
    assert ask(url, chatflow_id, "other chat", "elsewhere").status_code == 200
    frames = first.frames()
    check_order(frames)
    assert tokens_of(frames) == slow_answer("r")
    # free as soon as the turn's `end` is out: asking again at once is not refused
    again = ask(url, chatflow_id, "third", "busy")
    assert again.status_code == 200, again.text
    assert stored(url, chatflow_id, "busy") == [
        ("userMessage", slow_question("r"), "complete"),
        ("apiMessage", slow_answer("r"), "complete"),
        ("userMessage", "third", "complete"),
        ("apiMessage", "You said: third", "complete"),
    ]


def test_queue_waits_for_the_running_turn_then_answers_with_it_in_the_history(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    url = sqlite_server.url
    chatflow_id = paced_chatflow(sqlite_server, mock_llm, concurrentTurns="queue")
    first = TurnInFlight(url, chatflow_id, slow_question("q"), "queued").started()
    second = ask(url, chatflow_id, "queued second", "queued", streaming=True)
    assert second.status_code == 200, second.text
    assert tokens_of(parse_frames(second.content)) == "You said: queued second"
    assert tokens_of(first.frames()) == slow_answer("q")
    # the second turn ran after the first was stored: the model saw it
    record = mock_llm.find("queued second")
    assert [(m["role"], m["content"]) for m in record.body["messages"]][-3:] == [
        ("user", slow_question("q")),
        ("assistant", slow_answer("q")),
        ("user", "queued second"),
    ]
    assert [content for _, content, _ in stored(url, chatflow_id, "queued")] == [
        slow_question("q"),
        slow_answer("q"),
        "queued second",
        "You said: queued second",
    ]


def test_interrupt_aborts_the_running_turn_stores_it_aborted_then_answers(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    url = sqlite_server.url
    chatflow_id = paced_chatflow(sqlite_server, mock_llm, concurrentTurns="interrupt")
    first = TurnInFlight(url, chatflow_id, slow_question("i", 200), "cut").started()
    second = ask(url, chatflow_id, "second", "cut")
    assert second.status_code == 200, second.text
    assert second.json()["text"] == "You said: second"
    frames = first.frames()
    check_order(frames)
    assert frames[-2][1]["code"] == "aborted"
    assert "newer turn" in frames[-2][1]["error"]
    said = tokens_of(frames)
    assert stored(url, chatflow_id, "cut") == [
        ("userMessage", slow_question("i", 200), "complete"),
        ("apiMessage", said, "aborted"),
        ("userMessage", "second", "complete"),
        ("apiMessage", "You said: second", "complete"),
    ]


def test_the_setting_is_checked_on_save_and_kept_through_update_and_export(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    url = sqlite_server.url
    flow = {"nodes": [{"id": "m", "type": "chatOpenAI", "inputs": {"model": "echo"}}]}
    bad = requests.post(
        f"{url}/api/v1/chatflows",
        json={"name": "x", "flowData": flow, "concurrentTurns": "sometimes"},
        timeout=10,
    )
    assert bad.status_code == 400
    assert "concurrentTurns" in bad.json()["error"]
    created = sqlite_server.create_chatflow(flow)
    assert created["concurrentTurns"] == "reject"  # the default
    chatflow_url = f"{url}/api/v1/chatflows/{created['id']}"
    bad = requests.put(chatflow_url, json={"concurrentTurns": 3}, timeout=10)
    assert bad.status_code == 400
    assert "concurrentTurns" in bad.json()["error"]
    updated = requests.put(chatflow_url, json={"concurrentTurns": "queue"}, timeout=10)
    assert updated.json()["concurrentTurns"] == "queue"
    assert requests.get(chatflow_url, timeout=10).json()["concurrentTurns"] == "queue"
    bundle = requests.post(f"{url}/api/v1/export", json={}, timeout=10).json()
    exported = next(c for c in bundle["chatflows"] if c["id"] == created["id"])
    assert exported["concurrentTurns"] == "queue"
    report = requests.post(
        f"{url}/api/v1/import", json={"bundle": {**bundle, "chatflows": [exported]}}, timeout=10
    ).json()
    imported = requests.get(
        f"{url}/api/v1/chatflows/{report['chatflows'][0]['id']}", timeout=10
    ).json()
    assert imported["concurrentTurns"] == "queue"
    # an import is checked as a save is, the whole file before anything is written
    refused = requests.post(
        f"{url}/api/v1/import",
        json={"bundle": {**bundle, "chatflows": [{**exported, "concurrentTurns": "often"}]}},
        timeout=10,
    )
    assert refused.status_code == 400
    assert "bundle.chatflows.0.concurrentTurns" in refused.json()["error"]


def test_a_chatflow_tools_calls_take_turns_in_its_own_chat(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    url = sqlite_server.url
    called = paced_chatflow(sqlite_server, mock_llm)
    tool = {"id": "sub", "type": "chatflowTool", "inputs": {"chatflowId": called, "name": "ask_it"}}
    agent = sqlite_server.create_chatflow(agent_flow(mock_llm, [tool]))["id"]
    # the agent in chat "parent" asks the called chatflow in chat "parent:sub", which is
    # answering a turn now; and it asks twice in one step (parallel tool calls): the
    # parent's turn owns its sub-chat, so its calls wait their turn instead of refusing
    busy = TurnInFlight(url, called, slow_question("sub"), "parent:sub").started()
    calls = [["ask_it", {"question": slow_question(name, 3)}] for name in ("one", "two")]
    response = ask(url, agent, "call:" + json.dumps(calls), "parent", streaming=True)
    assert response.status_code == 200, response.text
    frames = parse_frames(response.content)
    check_order(frames)
    outputs = [tool["toolOutput"] for name, data in frames if name == "usedTools" for tool in data]
    assert sorted(outputs) == [slow_answer("one", 3), slow_answer("two", 3)]
    assert tokens_of(busy.frames()) == slow_answer("sub")
    # the called chatflow's chat holds each turn whole: the running one first, then the two
    contents = [content for _, content, _ in stored(url, called, "parent:sub")]
    assert contents[:2] == [slow_question("sub"), slow_answer("sub")]
    turns = sorted(zip(contents[2::2], contents[3::2], strict=True))
    assert turns == [(slow_question(n, 3), slow_answer(n, 3)) for n in ("one", "two")]
