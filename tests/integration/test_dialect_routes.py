"""The AG-UI and AI SDK routes as public routes of a chatflow (CORS, API key, refusals
naming the field), and the OpenAI-compatible route's refusals outside the SDK: checked
with plain HTTP, byte for byte where the clients are strict."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.conftest import RunningServer, start_server
from tests.mock_openai import MockOpenAI

APP = "https://app.example.com"


@pytest.fixture(scope="module")
def chatflow(sqlite_server: RunningServer, mock_llm: MockOpenAI) -> str:
    node = {
        "id": "m",
        "type": "chatOpenAI",
        "inputs": {"model": "echo", "baseUrl": mock_llm.base_url},
    }
    return sqlite_server.create_chatflow(
        {"nodes": [node], "edges": []}, allowedOrigins=[APP], name="routes"
    )["id"]


AGUI_BODY = {
    "threadId": "t1",
    "runId": "r1",
    "messages": [{"id": "1", "role": "user", "content": "hi"}],
}
AI_BODY = {
    "id": "c1",
    "messages": [{"id": "1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}],
}


@pytest.mark.parametrize("route", ["agui", "ai-sdk"])
def test_cors_is_the_chatflows(sqlite_server: RunningServer, chatflow: str, route: str) -> None:
    url = f"{sqlite_server.url}/api/v1/{route}/{chatflow}"
    preflight = requests.options(
        url,
        headers={
            "Origin": APP,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=5,
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == APP
    body = AGUI_BODY if route == "agui" else AI_BODY
    answered = requests.post(url, json=body, headers={"Origin": APP}, timeout=10)
    assert answered.status_code == 200 and answered.headers["access-control-allow-origin"] == APP
    refused = requests.post(url, json=body, headers={"Origin": "https://evil.example"}, timeout=5)
    assert refused.status_code == 403


def test_openai_route_is_not_for_other_sites(sqlite_server: RunningServer, chatflow: str) -> None:
    refused = requests.post(
        f"{sqlite_server.url}/v1/chat/completions",
        json={"model": chatflow, "messages": [{"role": "user", "content": "hi"}]},
        headers={"Origin": APP},
        timeout=5,
    )
    assert refused.status_code == 403


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("agui", {"runId": "r", "messages": []}, "threadId"),
        (
            "agui",
            {**AGUI_BODY, "messages": [{"id": "1", "role": "assistant", "content": "x"}]},
            "messages",
        ),
        (
            "agui",
            {
                **AGUI_BODY,
                "messages": [{"id": "1", "role": "user", "content": [{"type": "binary"}]}],
            },
            "messages[0].content[0]",
        ),
        ("ai-sdk", {"id": "c"}, "messages"),
        ("ai-sdk", {"messages": [{"role": "user", "parts": [{"type": "file"}]}]}, "messages"),
    ],
)
def test_refusals_name_the_field(
    sqlite_server: RunningServer, chatflow: str, route: str, body: dict[str, Any], field: str
) -> None:
    refused = requests.post(f"{sqlite_server.url}/api/v1/{route}/{chatflow}", json=body, timeout=5)
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == "invalid_request" and field in refused.json()["error"]


def test_openai_refusals_in_openais_shape(sqlite_server: RunningServer, chatflow: str) -> None:
    url = f"{sqlite_server.url}/v1/chat/completions"
    missing = requests.post(url, json={"model": chatflow}, timeout=5)
    assert missing.status_code == 400
    error = missing.json()["error"]
    assert error["type"] == "invalid_request_error" and "messages" in error["message"]
    assert error["param"] == "messages"  # OpenAI's field, for every refusal naming one
    wrong_type = requests.post(
        url, json={"model": 5, "messages": [{"role": "user", "content": "hi"}]}, timeout=5
    )
    assert wrong_type.status_code == 400 and wrong_type.json()["error"]["param"] == "model"
    images = requests.post(
        url,
        json={
            "model": chatflow,
            "messages": [{"role": "user", "content": [{"type": "image_url"}]}],
        },
        timeout=5,
    )
    assert images.status_code == 400 and "image_url" in images.json()["error"]["message"]
    # a system message where the chatflow does not allow overriding its prompt: not refused
    answered = requests.post(
        url,
        json={
            "model": "routes",
            "messages": [
                {"role": "system", "content": "You are a pirate."},
                {"role": "user", "content": "hi"},
            ],
        },
        timeout=10,
    )
    assert answered.status_code == 200 and answered.json()["choices"][0]["message"]["content"]


def test_a_key_guards_every_dialect(sqlite_server: RunningServer, mock_llm: MockOpenAI) -> None:
    key = requests.post(f"{sqlite_server.url}/api/v1/apikeys", json={"name": "d"}, timeout=5)
    node = {
        "id": "m",
        "type": "chatOpenAI",
        "inputs": {"model": "echo", "baseUrl": mock_llm.base_url},
    }
    guarded = sqlite_server.create_chatflow(
        {"nodes": [node], "edges": []}, apiKeyId=key.json()["id"]
    )["id"]
    for route, body in (("agui", AGUI_BODY), ("ai-sdk", AI_BODY)):
        url = f"{sqlite_server.url}/api/v1/{route}/{guarded}"
        assert requests.post(url, json=body, timeout=5).status_code == 401
        bearer = {"Authorization": f"Bearer {key.json()['key']}"}
        assert requests.post(url, json=body, headers=bearer, timeout=10).status_code == 200
    # the AI SDK's reconnect is the chatflow's as its POST is
    reconnect = f"{sqlite_server.url}/api/v1/ai-sdk/{guarded}/c1/stream"
    assert requests.get(reconnect, timeout=5).status_code == 401
    assert requests.get(reconnect, headers=bearer, timeout=5).status_code == 204


def test_ai_sdk_reconnect_without_a_running_answer(
    sqlite_server: RunningServer, chatflow: str
) -> None:
    """`GET …/{chatId}/stream` answers 204 (what `reconnectToStream` reads as "nothing to
    resume") for a chat with no answer running, with the chatflow's CORS; 404 for a
    chatflow that is not there."""
    url = f"{sqlite_server.url}/api/v1/ai-sdk/{chatflow}/never-asked/stream"
    preflight = requests.options(
        url,
        headers={
            "Origin": APP,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
        timeout=5,
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == APP
    answered = requests.get(url, headers={"Origin": APP}, timeout=5)
    assert answered.status_code == 204 and answered.content == b""
    assert answered.headers["access-control-allow-origin"] == APP
    # a GET changes nothing: another site gets its answer without CORS headers (the
    # browser withholds it), as the Prediction API's resume does
    elsewhere = requests.get(url, headers={"Origin": "https://evil.example"}, timeout=5)
    assert "access-control-allow-origin" not in elsewhere.headers
    missing = requests.get(f"{sqlite_server.url}/api/v1/ai-sdk/nope/c1/stream", timeout=5)
    assert missing.status_code == 404 and missing.json()["code"] == "chatflow_not_found"


def test_turns_are_stored_under_the_thread_and_chat_ids(
    sqlite_server: RunningServer, chatflow: str
) -> None:
    for route, body, chat_id in (
        ("agui", {**AGUI_BODY, "threadId": "stored-thread"}, "stored-thread"),
        ("ai-sdk", {**AI_BODY, "id": "stored-chat"}, "stored-chat"),
    ):
        answered = requests.post(
            f"{sqlite_server.url}/api/v1/{route}/{chatflow}", json=body, timeout=10
        )
        assert answered.status_code == 200
        stored = requests.get(
            f"{sqlite_server.url}/api/v1/chatmessage/{chatflow}",
            params={"chatId": chat_id},
            timeout=5,
        ).json()
        assert [m["content"] for m in stored] == ["hi", "You said: hi"], route


def test_the_model_list_is_what_the_token_opens(
    tmp_path_factory: pytest.TempPathFactory, mock_llm: MockOpenAI
) -> None:
    home = tmp_path_factory.mktemp("models")
    server = start_server(
        home, f"sqlite+aiosqlite:///{home / 't.db'}", TAILWINDS_ADMIN_TOKEN="admin-token-1"
    )
    try:
        admin = {"Authorization": "Bearer admin-token-1"}
        key = requests.post(
            f"{server.url}/api/v1/apikeys", json={"name": "k"}, headers=admin, timeout=5
        ).json()
        node = {
            "id": "m",
            "type": "chatOpenAI",
            "inputs": {"model": "echo", "baseUrl": mock_llm.base_url},
        }
        ids = [
            requests.post(
                f"{server.url}/api/v1/chatflows",
                json={"name": name, "flowData": {"nodes": [node]}, **fields},
                headers=admin,
                timeout=5,
            ).json()["id"]
            for name, fields in (("open", {}), ("guarded", {"apiKeyId": key["id"]}))
        ]

        def listed(authorization: str | None) -> set[str]:
            headers = {"Authorization": authorization} if authorization else {}
            response = requests.get(f"{server.url}/v1/models", headers=headers, timeout=5)
            assert response.status_code == 200, response.text
            return {m["id"] for m in response.json()["data"]}

        assert listed(None) == set()  # a keyless chatflow's id is not handed to anyone
        assert listed(f"Bearer {key['key']}") == {ids[1]}
        assert listed("Bearer admin-token-1") >= set(ids)
        assert listed("Bearer wrong") == set()
        # what OpenAI-compatible clients send for a chatflow without a key ("any string"),
        # listed on every page load: no key guessed, never refused for it (it was 429 once
        # the address had listed 10 times in a minute)
        for _ in range(15):
            assert listed("Bearer any-string") == set()
        # a token of the issued form that opens nothing still counts as a failed key
        wrong_key = "Bearer tw_" + "x" * 43
        statuses = {
            requests.get(
                f"{server.url}/v1/models", headers={"Authorization": wrong_key}, timeout=5
            ).status_code
            for _ in range(12)
        }
        assert 429 in statuses
    finally:
        server.stop()


def test_ai_sdk_reconnect_skips_a_prediction_without_a_grace(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    """A chat's answer running through the Prediction API without `resumeGraceSeconds`
    (local mode) cannot be resumed: the AI SDK's reconnect answers 204 while it runs."""
    chatflow_id = sqlite_server.model_chatflow(mock_llm.base_url, model="paced:0.05")
    question = " ".join(f"word{n}" for n in range(60))
    with requests.post(
        f"{sqlite_server.url}/api/v1/predictions/{chatflow_id}",
        json={"question": question, "streaming": True, "chatId": "plain"},
        stream=True,
        timeout=30,
    ) as running:
        seen = b""
        for piece in running.iter_content(chunk_size=None):
            seen += piece
            if b"event: token" in seen:
                break  # the run is going on
        assert b"event: token" in seen and b"event: end" not in seen
        url = f"{sqlite_server.url}/api/v1/ai-sdk/{chatflow_id}/plain/stream"
        assert requests.get(url, timeout=5).status_code == 204
