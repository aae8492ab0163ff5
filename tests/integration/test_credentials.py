"""Stored provider credentials: encrypted at rest, used by runs, never shown again: not in
any API answer, log line or error text."""

from __future__ import annotations

import sqlite3

import requests

from tests.conftest import RunningServer
from tests.mock_openai import MockOpenAI

SECRET = "sk-proj-credentialsecretABCDEF123456"


def create_credential(server: RunningServer, secret: str = SECRET) -> dict:
    response = requests.post(
        f"{server.url}/api/v1/credentials",
        json={"name": "openai prod", "provider": "openai", "data": {"apiKey": secret}},
        timeout=5,
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_credential_is_used_and_never_shown(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    credential = create_credential(sqlite_server)
    assert set(credential) == {"id", "name", "provider", "createdDate"}
    node = {
        "id": "chat_0",
        "type": "chatOpenAI",
        "inputs": {"model": "echo", "baseUrl": mock_llm.base_url, "credential": credential["id"]},
    }
    chatflow = sqlite_server.create_chatflow({"nodes": [node]})
    answer = requests.post(
        f"{sqlite_server.url}/api/v1/predictions/{chatflow['id']}",
        json={"question": "with credential"},
        timeout=10,
    )
    assert answer.status_code == 200
    assert mock_llm.find("with credential").headers["Authorization"] == f"Bearer {SECRET}"

    # the provider refuses the key and echoes it: the error must not carry it on
    node["inputs"]["model"] = "status:401"
    failing = sqlite_server.create_chatflow({"nodes": [node]})
    streamed = requests.post(
        f"{sqlite_server.url}/api/v1/predictions/{failing['id']}",
        json={"question": "leak check", "streaming": True, "chatId": "leak-streamed"},
        timeout=10,
    )
    assert "provider_auth" in streamed.text
    plain = requests.post(
        f"{sqlite_server.url}/api/v1/predictions/{failing['id']}",
        json={"question": "leak check 2", "chatId": "leak-plain"},
        timeout=10,
    )
    assert plain.status_code == 502

    seen = [
        streamed.text,
        plain.text,
        requests.get(f"{sqlite_server.url}/api/v1/credentials", timeout=5).text,
        requests.get(f"{sqlite_server.url}/api/v1/chatflows", timeout=5).text,
        sqlite_server.log(),
    ]
    # the stored turns of both chats: the failed answers' errors are kept, without the key
    for chat_id in ("leak-streamed", "leak-plain"):
        stored = requests.get(
            f"{sqlite_server.url}/api/v1/chatmessage/{failing['id']}",
            params={"chatId": chat_id},
            timeout=5,
        )
        assert stored.status_code == 200 and "leak check" in stored.text, stored.text
        seen.append(stored.text)
    for text in seen:
        assert SECRET not in text
        assert SECRET[8:] not in text

    # at rest: only ciphertext in the database
    with sqlite3.connect(sqlite_server.home / "tailwinds.db") as db:
        (stored,) = db.execute(
            "select data from credentials where id = ?", (credential["id"],)
        ).fetchone()
    assert SECRET not in stored
    assert stored.startswith("gAAAAA")  # a Fernet token


def test_unknown_or_deleted_credential(sqlite_server: RunningServer, mock_llm: MockOpenAI) -> None:
    node = {
        "id": "c",
        "type": "chatOpenAI",
        "inputs": {"model": "echo", "baseUrl": mock_llm.base_url, "credential": "nope"},
    }
    response = requests.post(
        f"{sqlite_server.url}/api/v1/chatflows",
        json={"name": "x", "flowData": {"nodes": [node]}},
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith("nodes[c].inputs.credential:")

    credential = create_credential(sqlite_server, "sk-deleted-later-0000")
    node["inputs"]["credential"] = credential["id"]
    chatflow = sqlite_server.create_chatflow({"nodes": [node]})
    assert (
        requests.delete(
            f"{sqlite_server.url}/api/v1/credentials/{credential['id']}", timeout=5
        ).status_code
        == 204
    )
    answer = requests.post(
        f"{sqlite_server.url}/api/v1/predictions/{chatflow['id']}",
        json={"question": "q", "streaming": True},
        timeout=5,
    )
    assert answer.status_code == 500
    assert "no longer exists" in answer.json()["error"]


def test_inline_api_key_is_sealed_and_masked(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    inline = "sk-inline-secret-0123456789abcdef"
    node = {
        "id": "chat_0",
        "type": "chatOpenAI",
        "inputs": {"model": "echo", "baseUrl": mock_llm.base_url, "apiKey": inline},
    }
    chatflow = sqlite_server.create_chatflow({"nodes": [node]})
    assert chatflow["flowData"]["nodes"][0]["inputs"]["apiKey"] == "********"
    url = f"{sqlite_server.url}/api/v1/chatflows/{chatflow['id']}"
    assert inline not in requests.get(url, timeout=5).text
    with sqlite3.connect(sqlite_server.home / "tailwinds.db") as db:
        (stored,) = db.execute(
            "select flow_data from chatflows where id = ?", (chatflow["id"],)
        ).fetchone()
    assert inline not in stored and "enc:v1:" in stored

    predict = f"{sqlite_server.url}/api/v1/predictions/{chatflow['id']}"
    requests.post(predict, json={"question": "inline one"}, timeout=10)
    assert mock_llm.find("inline one").headers["Authorization"] == f"Bearer {inline}"

    # sending the masked flow back (an editor's round trip) keeps the key
    fetched = requests.get(url, timeout=5).json()
    fetched["flowData"]["nodes"][0]["inputs"]["systemMessage"] = "Be brief."
    updated = requests.put(url, json={"flowData": fetched["flowData"]}, timeout=5)
    assert updated.status_code == 200, updated.text
    requests.post(predict, json={"question": "inline two"}, timeout=10)
    sent = mock_llm.find("inline two")
    assert sent.headers["Authorization"] == f"Bearer {inline}"
    assert sent.body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert inline not in sqlite_server.log()
