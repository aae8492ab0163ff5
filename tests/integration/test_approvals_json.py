"""The JSON answer (`streaming: false`) of a chatflow whose tool call waits for a person
(issue 24 item 4): it returns `status: "waiting"` with the action, and the decision route
answers with the rest. A real server (and, in queue mode, two API nodes and a worker on
Redis), the mock model asking for the calls."""

from __future__ import annotations

import json
from typing import Any

import requests

from tailwinds.client import Tailwinds
from tests.conftest import RunningServer
from tests.integration.test_agents import agent_flow
from tests.integration.test_approvals import (
    CALC,
    Cluster,
    approval_chatflow,
    approvals_cluster,  # noqa: F401 (the module's queue-mode fixture, shared)
    calls,
    decide,
)
from tests.mock_openai import MockOpenAI
from tests.sse_frames import parse_numbered


def ask(server: RunningServer, chatflow_id: str, question: str) -> dict[str, Any]:
    reply = requests.post(
        f"{server.url}/api/v1/predictions/{chatflow_id}",
        json={"question": question},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def decided(server: RunningServer, chatflow_id: str, action_id: str, **body: Any) -> Any:
    reply = decide(server, chatflow_id, action_id, **body)
    assert reply.status_code == 200, reply.text
    return reply.json()


def check_waiting(answer: dict[str, Any], expression: str) -> str:
    assert answer["status"] == "waiting", answer
    action = answer["action"]
    assert action["tool"] == "calculator"
    assert action["toolInput"] == {"expression": expression}
    assert action["expiresAt"].endswith("Z")
    assert answer["text"] == "" and answer["chatId"] and answer["messageId"]
    return str(action["actionId"])


def approve_then_rest(api: RunningServer, other: RunningServer, chatflow_id: str) -> None:
    answer = ask(api, chatflow_id, calls("6 * 7"))
    action_id = check_waiting(answer, "6 * 7")
    rest = decided(other, chatflow_id, action_id, decision="approve")
    assert rest["actionId"] == action_id and rest["decision"] == "approve"
    assert rest["status"] == "complete" and rest["text"] == "Result: 42"
    [tool] = rest["usedTools"]
    assert tool["toolOutput"] == "42" and tool["actionId"] == action_id
    assert rest["messageId"] == answer["messageId"] and rest["chatId"] == answer["chatId"]
    again = decide(api, chatflow_id, action_id, decision="reject")
    assert again.status_code == 409


def reject_then_rest(api: RunningServer, other: RunningServer, chatflow_id: str) -> None:
    action_id = check_waiting(ask(api, chatflow_id, calls("6 * 7")), "6 * 7")
    rest = decided(other, chatflow_id, action_id, decision="reject", message="not today")
    assert rest["status"] == "complete" and rest["text"].startswith("Result: declined")
    [tool] = rest["usedTools"]
    assert tool["decision"] == "reject" and "not today" in tool["toolOutput"]


def two_in_sequence(api: RunningServer, other: RunningServer, chatflow_id: str) -> None:
    # two calls in one round: the answer waits at the first, the first's decision at the
    # second, the second's gives the rest
    first = ask(api, chatflow_id, calls("1 + 2", "3 + 4"))
    one = check_waiting(first, "1 + 2")
    middle = decided(other, chatflow_id, one, decision="approve")
    assert middle["status"] == "waiting" and middle["decision"] == "approve"
    two = middle["action"]["actionId"]
    assert two != one and middle["action"]["toolInput"] == {"expression": "3 + 4"}
    rest = decided(api, chatflow_id, two, decision="reject")
    assert rest["status"] == "complete"
    decisions = {t["actionId"]: t["decision"] for t in rest["usedTools"]}
    assert decisions == {one: "approve", two: "reject"}


def follow(server: RunningServer, chatflow_id: str, message_id: str) -> list[Any]:
    """A waiting JSON answer's run, followed as a stream from its start to its end."""
    with requests.get(
        f"{server.url}/api/v1/predictions/{chatflow_id}/stream/{message_id}",
        headers={"Last-Event-ID": "0"},
        timeout=30,
    ) as followed:
        assert followed.status_code == 200, followed.text
        return list(parse_numbered(followed.content))


def expiry_while_nobody_decides(server: RunningServer, chatflow_id: str) -> None:
    answer = ask(server, chatflow_id, calls("6 * 7"))
    action_id = check_waiting(answer, "6 * 7")
    # the run went on without a reader: its frames, followed to the end, tell the expiry
    frames = follow(server, chatflow_id, answer["messageId"])
    [tools] = [data for _, name, data in frames if name == "usedTools"]
    assert tools[0]["decision"] == "expired" and "nobody approved" in tools[0]["toolOutput"]
    assert [name for _, name, _ in frames][-1] == "end"
    assert decide(server, chatflow_id, action_id, decision="approve").status_code == 409


def test_json_answer_waits_then_the_decision_answers_with_the_rest(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = approval_chatflow(sqlite_server, mock_llm)
    approve_then_rest(sqlite_server, sqlite_server, chatflow_id)
    reject_then_rest(sqlite_server, sqlite_server, chatflow_id)
    two_in_sequence(sqlite_server, sqlite_server, chatflow_id)


def test_json_answer_expiry_while_nobody_decides(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow = sqlite_server.create_chatflow(
        agent_flow(mock_llm, [CALC]), approvalTimeoutSeconds=0.5
    )
    expiry_while_nobody_decides(sqlite_server, chatflow["id"])


def test_json_answer_without_approval_rules_keeps_its_shape(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    calc = {"id": "calc", "type": "calculator", "inputs": {}}
    chatflow_id = sqlite_server.create_chatflow(agent_flow(mock_llm, [calc]))["id"]
    answer = ask(sqlite_server, chatflow_id, calls("6 * 7"))
    assert "status" not in answer and answer["text"] == "Result: 42"


def test_queue_mode_json_answer_decided_on_the_other_api_node(
    approvals_cluster: Cluster,  # noqa: F811
    mock_llm: MockOpenAI,
) -> None:
    a, b = approvals_cluster.apis
    chatflow_id = approval_chatflow(a, mock_llm)
    approve_then_rest(a, b, chatflow_id)
    reject_then_rest(b, a, chatflow_id)
    two_in_sequence(a, b, chatflow_id)
    expiring = approval_chatflow(a, mock_llm, approvalTimeoutS=1)
    expiry_while_nobody_decides(b, expiring)


def test_the_sdk_gives_the_waiting_action_and_decides_it(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = approval_chatflow(sqlite_server, mock_llm)
    with Tailwinds(sqlite_server.url) as client:
        answer = client.predict(chatflow_id, calls("6 * 7"))
        assert answer.status == "waiting" and answer.action is not None
        assert answer.action.tool_input == {"expression": "6 * 7"}
        rest = client.decide(chatflow_id, answer.action.action_id, "approve")
    assert rest["status"] == "complete" and rest["text"] == "Result: 42"


def test_a_run_that_fails_after_the_decision_is_the_routes_error(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    # `loop:` asks for the same call every round (the second made from the first's
    # output): past `maxIterations` the agent fails
    chatflow_id = approval_chatflow(sqlite_server, mock_llm, maxIterations=2)
    question = "loop:" + json.dumps(["calculator", {"expression": "2 * 3"}])
    action_id = check_waiting(ask(sqlite_server, chatflow_id, question), "2 * 3")
    rest = decide(sqlite_server, chatflow_id, action_id, decision="approve")
    assert rest.status_code >= 400 and "rounds of tool calls" in rest.json()["error"]
    # the decision itself was delivered
    assert decide(sqlite_server, chatflow_id, action_id, decision="approve").status_code == 409


def test_an_abort_while_the_json_answer_waits_ends_its_run(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = approval_chatflow(sqlite_server, mock_llm)
    answer = ask(sqlite_server, chatflow_id, calls("6 * 7"))
    action_id = check_waiting(answer, "6 * 7")
    with Tailwinds(sqlite_server.url) as client:
        assert client.abort(chatflow_id, answer["chatId"]) == 1
    frames = follow(sqlite_server, chatflow_id, answer["messageId"])
    errors = [data for _, name, data in frames if name == "error"]
    assert [e["code"] for e in errors] == ["aborted"]
    assert decide(sqlite_server, chatflow_id, action_id, decision="approve").status_code == 409


def test_a_new_chat_whose_run_waits_is_busy_for_its_next_question(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    """The chat id a waiting answer hands back names a chat whose turn is still running,
    though the first question named no chat."""
    chatflow_id = approval_chatflow(sqlite_server, mock_llm)
    first = ask(sqlite_server, chatflow_id, calls("5 * 5"))
    action_id = check_waiting(first, "5 * 5")
    busy = requests.post(
        f"{sqlite_server.url}/api/v1/predictions/{chatflow_id}",
        json={"question": calls("6 * 6"), "chatId": first["chatId"]},
        timeout=30,
    )
    assert busy.status_code == 409 and busy.json()["code"] == "chat_busy", busy.text
    rest = decided(sqlite_server, chatflow_id, action_id, decision="approve")
    assert rest["status"] == "complete" and "25" in rest["text"], rest
