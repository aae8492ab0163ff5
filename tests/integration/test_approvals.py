"""A person approves a tool call mid-stream (issue 24): a real server (and, in queue mode,
two API nodes and a worker on Redis), the mock model asking for the calls, the SDK
answering the `action` events, the same stream going on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tailwinds.client import Action, Error, Tailwinds, UsedTools
from tailwinds.client.events import Event
from tests.conftest import RunningServer
from tests.integration.test_agents import agent_flow
from tests.integration.test_queue_mode import Cluster, queue_env, start_cluster
from tests.mock_openai import MockOpenAI
from tests.sse_frames import check_order, parse_numbered

CALC = {"id": "calc", "type": "calculator", "inputs": {"requireApproval": "always"}}


def calls(*expressions: str) -> str:
    return "call:" + json.dumps([["calculator", {"expression": e}] for e in expressions])


def approval_chatflow(server: RunningServer, mock_llm: MockOpenAI, **inputs: Any) -> str:
    return str(server.create_chatflow(agent_flow(mock_llm, [CALC], **inputs))["id"])


def decide(server: RunningServer, chatflow_id: str, action_id: str, **body: Any) -> Any:
    return requests.post(
        f"{server.url}/api/v1/predictions/{chatflow_id}/actions/{action_id}",
        json=body,
        timeout=10,
    )


def run_deciding(
    server: RunningServer, chatflow_id: str, question: str, on_action: Any
) -> list[Event]:
    """The whole stream through the SDK, `on_action(stream, action)` called at each
    `action` event as it arrives."""
    with (
        Tailwinds(server.url) as client,
        client.stream(chatflow_id, question, raise_errors=False) as stream,
    ):
        events: list[Event] = []
        for event in stream:
            events.append(event)
            if isinstance(event, Action):
                on_action(stream, event)
        return events


def model_requests(mock_llm: MockOpenAI, question: str) -> int:
    return sum(
        1
        for record in list(mock_llm.records)
        if any(m.get("content") == question for m in record.body.get("messages", []))
    )


def used(events: list[Event]) -> list[dict[str, Any]]:
    return [tool for e in events if isinstance(e, UsedTools) for tool in e.tools]


def text(events: list[Event]) -> str:
    return "".join(getattr(e, "text", "") for e in events)


def test_approve_runs_the_tool_and_the_same_stream_goes_on(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = approval_chatflow(sqlite_server, mock_llm)
    question = calls("6 * 7 + 0 * 101")
    asked_while_waiting: list[int] = []

    def on_action(stream: Any, action: Action) -> None:
        asked_while_waiting.append(model_requests(mock_llm, question))
        stream.approve(action)

    events = run_deciding(sqlite_server, chatflow_id, question, on_action)
    # while the call waited, the model had been asked once: nothing more ran until the
    # decision; then once more, for the answer
    assert asked_while_waiting == [1] and model_requests(mock_llm, question) == 2
    actions = [e for e in events if isinstance(e, Action)]
    assert len(actions) == 1
    assert actions[0].tool == "calculator"
    assert actions[0].tool_input == {"expression": "6 * 7 + 0 * 101"}
    assert actions[0].expires_at.endswith("Z")
    [tool] = used(events)
    assert tool["toolOutput"] == "42" and tool["decision"] == "approve"
    assert tool["actionId"] == actions[0].action_id
    assert text(events) == "Result: 42"
    # the action came before the tool's use, the answer after it
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("Action") < kinds.index("UsedTools") < kinds.index("Token")


def test_edit_then_approve_runs_the_persons_input(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = approval_chatflow(sqlite_server, mock_llm)
    events = run_deciding(
        sqlite_server,
        chatflow_id,
        calls("6 * 7"),
        lambda s, a: s.approve(a, tool_input={"expression": "1 + 1"}),
    )
    [tool] = used(events)
    assert tool["toolInput"] == {"expression": "1 + 1"}
    assert tool["toolOutput"].endswith("2") and "changed" in tool["toolOutput"]


def test_reject_tells_the_model_with_the_reason(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = approval_chatflow(sqlite_server, mock_llm)
    events = run_deciding(
        sqlite_server, chatflow_id, calls("6 * 7"), lambda s, a: s.reject(a, "not today")
    )
    [tool] = used(events)
    assert tool["decision"] == "reject"
    assert tool["toolOutput"].startswith("declined") and "not today" in tool["toolOutput"]
    assert text(events).startswith("Result: declined")  # the model read it and went on


def test_two_actions_of_one_turn_wait_and_are_decided_apart(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = approval_chatflow(sqlite_server, mock_llm)
    seen: list[Action] = []

    def on_action(stream: Any, action: Action) -> None:
        seen.append(action)
        if len(seen) == 2:  # both announced before either is decided
            stream.reject(seen[0])
            stream.approve(seen[1])

    events = run_deciding(sqlite_server, chatflow_id, calls("1 + 2", "3 + 4"), on_action)
    by_input = {t["toolInput"]["expression"]: t for t in used(events)}
    assert by_input["1 + 2"]["decision"] == "reject"
    assert by_input["3 + 4"]["decision"] == "approve" and by_input["3 + 4"]["toolOutput"] == "7"


def test_second_decision_409_unknown_404_bad_body_names_the_field(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = approval_chatflow(sqlite_server, mock_llm)
    answers: list[requests.Response] = []

    def on_action(stream: Any, action: Action) -> None:
        bad = decide(sqlite_server, chatflow_id, action.action_id, decision="maybe")
        answers.append(bad)
        wrong = decide(sqlite_server, chatflow_id, action.action_id, decision="approve", x=1)
        answers.append(wrong)
        answers.append(decide(sqlite_server, chatflow_id, action.action_id, decision="approve"))
        answers.append(decide(sqlite_server, chatflow_id, action.action_id, decision="reject"))

    run_deciding(sqlite_server, chatflow_id, calls("2 * 2"), on_action)
    bad, wrong, first, second = answers
    assert bad.status_code in (400, 422) and "decision" in bad.json()["error"]
    assert wrong.status_code in (400, 422) and "x" in bad.json()["error"] + wrong.json()["error"]
    assert first.status_code == 200, first.text
    assert second.status_code == 409 and second.json()["code"] == "action_closed"
    unknown = decide(sqlite_server, chatflow_id, "no-such-action", decision="approve")
    assert unknown.status_code == 404 and unknown.json()["code"] == "action_not_found"
    # another chatflow's id does not reach the action either
    other = approval_chatflow(sqlite_server, mock_llm)
    assert decide(sqlite_server, other, "no-such-action", decision="approve").status_code == 404


def test_expiry_rejects_as_timed_out_and_the_run_goes_on(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    # the chatflow's setting (the queue-mode test uses the agent's own input)
    flow = agent_flow(mock_llm, [CALC])
    chatflow = sqlite_server.create_chatflow(flow, approvalTimeoutSeconds=0.5)
    assert chatflow["approvalTimeoutSeconds"] == 0.5
    chatflow_id = chatflow["id"]
    events = run_deciding(sqlite_server, chatflow_id, calls("6 * 7"), lambda s, a: None)
    [action] = [e for e in events if isinstance(e, Action)]
    [tool] = used(events)
    assert tool["decision"] == "expired" and "nobody approved" in tool["toolOutput"]
    assert text(events).startswith("Result: declined")
    late = decide(sqlite_server, chatflow_id, action.action_id, decision="approve")
    assert late.status_code == 409


def test_abort_while_waiting_ends_the_run(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = approval_chatflow(sqlite_server, mock_llm)

    def on_action(stream: Any, action: Action) -> None:
        with Tailwinds(sqlite_server.url) as client:
            assert client.abort(chatflow_id, stream.chat_id) == 1

    events = run_deciding(sqlite_server, chatflow_id, calls("6 * 7"), on_action)
    errors = [e for e in events if isinstance(e, Error)]
    assert [e.code for e in errors] == ["aborted"] and not used(events)
    [action] = [e for e in events if isinstance(e, Action)]
    after = decide(sqlite_server, chatflow_id, action.action_id, decision="approve")
    assert after.status_code == 409


def read_until_action(chunks: Iterator[bytes]) -> tuple[bytes, dict[str, Any]]:
    raw = b""
    for chunk in chunks:
        raw += chunk
        for _, name, data in parse_numbered(raw[: raw.rfind(b"\n\n") + 2]):
            if name == "action":
                return raw, data
    raise AssertionError(f"no action event in {raw!r}")


def resume_while_waiting(api: RunningServer, other: RunningServer, chatflow_id: str) -> None:
    with requests.post(
        f"{api.url}/api/v1/predictions/{chatflow_id}",
        json={"question": calls("6 * 7"), "streaming": True, "resumeGraceSeconds": 60},
        stream=True,
        timeout=30,
    ) as first:
        assert first.status_code == 200, first.text
        raw, action = read_until_action(first.iter_content(None))
    # the client dropped while the action waits; it comes back (on another node) from the start
    message_id = next(d["messageId"] for _, n, d in parse_numbered(raw) if n == "start")
    with requests.get(
        f"{other.url}/api/v1/predictions/{chatflow_id}/stream/{message_id}",
        headers={"Last-Event-ID": "0"},
        stream=True,
        timeout=30,
    ) as resumed:
        assert resumed.status_code == 200, resumed.text
        chunks = resumed.iter_content(None)
        replayed, again = read_until_action(chunks)
        assert again == action  # the action event is replayed
        answer = decide(other, chatflow_id, action["actionId"], decision="approve")
        assert answer.status_code == 200, answer.text
        for chunk in chunks:
            replayed += chunk
    frames = parse_numbered(replayed)
    check_order([(name, data) for _, name, data in frames])
    tools = [data for _, name, data in frames if name == "usedTools"]
    assert tools[0][0]["toolOutput"] == "42"
    assert [n for _, n, _ in frames][-2:] == ["metadata", "end"]


def test_resume_while_waiting_replays_the_action(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    resume_while_waiting(sqlite_server, sqlite_server, approval_chatflow(sqlite_server, mock_llm))


# -- queue mode: the decision reaches the worker from any API node ------------------------


@pytest.fixture(scope="module")
def approvals_cluster(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, redis_url: str
) -> Iterator[Cluster]:
    running = start_cluster(tmp_path_factory, postgres_url, queue_env(redis_url), apis=2, workers=1)
    yield running
    running.stop()


def test_queue_mode_decision_posted_to_the_other_api_node(
    approvals_cluster: Cluster, mock_llm: MockOpenAI
) -> None:
    a, b = approvals_cluster.apis
    chatflow_id = approval_chatflow(a, mock_llm)
    answers: list[requests.Response] = []

    def on_action(stream: Any, action: Action) -> None:
        answers.append(decide(b, chatflow_id, action.action_id, decision="approve"))
        answers.append(decide(a, chatflow_id, action.action_id, decision="reject"))

    events = run_deciding(a, chatflow_id, calls("6 * 7"), on_action)
    assert [r.status_code for r in answers] == [200, 409]
    assert used(events)[0]["toolOutput"] == "42" and text(events) == "Result: 42"
    assert decide(b, chatflow_id, "no-such-action", decision="approve").status_code == 404


def test_queue_mode_reject_two_actions_and_expiry(
    approvals_cluster: Cluster, mock_llm: MockOpenAI
) -> None:
    a, b = approvals_cluster.apis
    chatflow_id = approval_chatflow(a, mock_llm, approvalTimeoutS=1)
    seen: list[Action] = []

    def on_action(stream: Any, action: Action) -> None:
        seen.append(action)
        if len(seen) == 1:  # the second is left to expire
            assert decide(b, chatflow_id, action.action_id, decision="reject").status_code == 200

    events = run_deciding(a, chatflow_id, calls("1 + 2", "3 + 4"), on_action)
    decisions = sorted(t["decision"] for t in used(events))
    assert decisions == ["expired", "reject"]


def test_queue_mode_abort_while_waiting(approvals_cluster: Cluster, mock_llm: MockOpenAI) -> None:
    a, b = approvals_cluster.apis
    chatflow_id = approval_chatflow(a, mock_llm)

    def on_action(stream: Any, action: Action) -> None:
        with Tailwinds(b.url) as client:
            client.abort(chatflow_id, stream.chat_id)

    events = run_deciding(a, chatflow_id, calls("6 * 7"), on_action)
    assert [e.code for e in events if isinstance(e, Error)] == ["aborted"]


def test_queue_mode_resume_on_the_other_node_while_waiting(
    approvals_cluster: Cluster, mock_llm: MockOpenAI
) -> None:
    a, b = approvals_cluster.apis
    resume_while_waiting(a, b, approval_chatflow(a, mock_llm))
