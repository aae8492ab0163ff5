"""Every route without credentials, with wrong ones, and with another chatflow's key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import start_server
from tests.mock_openai import MockOpenAI

ADMIN = "admin-token-for-authz-tests"


@pytest.fixture(scope="module")
def guarded(
    tmp_path_factory: pytest.TempPathFactory, mock_llm: MockOpenAI
) -> Iterator[dict[str, Any]]:
    home: Path = tmp_path_factory.mktemp("authz")
    server = start_server(
        home,
        f"sqlite+aiosqlite:///{home / 't.db'}",
        TAILWINDS_ADMIN_TOKEN=ADMIN,
        # every route is tried with wrong keys from this one address: a 401 each, not 429
        TAILWINDS_MAX_KEY_FAILURES_PER_MINUTE="0",
    )
    admin = {"Authorization": f"Bearer {ADMIN}"}
    keys = [
        requests.post(
            f"{server.url}/api/v1/apikeys", json={"name": n}, headers=admin, timeout=5
        ).json()
        for n in "ab"
    ]
    node = {
        "id": "m",
        "type": "chatOpenAI",
        "inputs": {"model": "echo", "baseUrl": mock_llm.base_url},
    }
    flows = [
        requests.post(
            f"{server.url}/api/v1/chatflows",
            json={"name": n, "flowData": {"nodes": [node]}, "apiKeyId": key["id"]},
            headers=admin,
            timeout=5,
        ).json()
        for n, key in zip("ab", keys, strict=True)
    ]
    yield {"server": server, "keys": keys, "flows": flows}
    server.stop()


MANAGEMENT = [
    ("GET", "/api/v1/chatflows", None),
    ("POST", "/api/v1/chatflows", {"name": "x", "flowData": {"nodes": []}}),
    ("GET", "/api/v1/chatflows/{flow}", None),
    ("PUT", "/api/v1/chatflows/{flow}", {"name": "y"}),
    ("DELETE", "/api/v1/chatflows/{flow}", None),
    ("GET", "/api/v1/apikeys", None),
    ("POST", "/api/v1/apikeys", {"name": "z"}),
    ("DELETE", "/api/v1/apikeys/{key}", None),
    ("GET", "/api/v1/credentials", None),
    ("POST", "/api/v1/credentials", {"name": "c", "provider": "openai", "data": {"apiKey": "k"}}),
    ("GET", "/api/v1/document-stores", None),
    ("POST", "/api/v1/document-stores", {"name": "d", "embedding": {}}),
    ("GET", "/api/v1/chatmessage/{flow}?chatId=x", None),
]


@pytest.mark.parametrize(("method", "path", "body"), MANAGEMENT)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Bearer {chatflow_key}"])
def test_management_needs_the_admin_token(
    guarded: dict[str, Any], method: str, path: str, body: Any, authorization: str | None
) -> None:
    server = guarded["server"]
    url = server.url + path.format(flow=guarded["flows"][0]["id"], key=guarded["keys"][0]["id"])
    headers = {}
    if authorization:
        headers["Authorization"] = authorization.format(chatflow_key=guarded["keys"][0]["key"])
    response = requests.request(method, url, json=body, headers=headers, timeout=5)
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/predictions/{flow}", {"question": "q"}),
        ("POST", "/api/v1/prediction/{flow}", {"question": "q", "streaming": True}),
        ("POST", "/api/v1/predictions/{flow}/abort", {"chatId": "c"}),
        ("PUT", "/api/v1/chatmessage/abort/{flow}/c", None),
        ("POST", "/api/v1/vector/upsert/{flow}", {"documents": []}),
        ("GET", "/api/v1/predictions/{flow}/stream/some-message", None),
        ("POST", "/api/v1/predictions/{flow}/actions/some-action", {"decision": "approve"}),
    ],
)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Bearer {other_key}"])
def test_chatflow_routes_need_that_chatflow_key(
    guarded: dict[str, Any], method: str, path: str, body: Any, authorization: str | None
) -> None:
    server = guarded["server"]
    url = server.url + path.format(flow=guarded["flows"][0]["id"])
    headers = {}
    if authorization:
        headers["Authorization"] = authorization.format(other_key=guarded["keys"][1]["key"])
    response = requests.request(method, url, json=body, headers=headers, timeout=5)
    assert response.status_code == 401, response.text


def test_the_admin_token_opens_every_chatflow(guarded: dict[str, Any]) -> None:
    """The operator, who may change or remove a chatflow's key anyway, may also use it (the
    web app's playground does)."""
    server = guarded["server"]
    flow = guarded["flows"][0]["id"]
    admin = {"Authorization": f"Bearer {ADMIN}"}
    answer = requests.post(
        f"{server.url}/api/v1/predictions/{flow}", json={"question": "q"}, headers=admin, timeout=5
    )
    assert answer.status_code == 200 and answer.json()["text"] == "You said: q"
    abort = requests.post(
        f"{server.url}/api/v1/predictions/{flow}/abort",
        json={"chatId": "c"},
        headers=admin,
        timeout=5,
    )
    assert abort.json() == {"chatId": "c", "aborted": 0}


def test_the_right_key_works_and_abort_stays_in_its_chatflow(
    guarded: dict[str, Any], mock_llm: MockOpenAI
) -> None:
    import json
    import threading
    import time

    server = guarded["server"]
    flow_a, flow_b = (f["id"] for f in guarded["flows"])
    key_a, key_b = (k["key"] for k in guarded["keys"])
    slow = {
        "id": "m",
        "type": "chatOpenAI",
        "inputs": {"model": "paced:0.05", "baseUrl": mock_llm.base_url},
    }
    requests.put(
        f"{server.url}/api/v1/chatflows/{flow_a}",
        json={"flowData": {"nodes": [slow]}},
        headers={"Authorization": f"Bearer {ADMIN}"},
        timeout=5,
    )
    result: dict[str, Any] = {}

    def run() -> None:
        result["response"] = requests.post(
            f"{server.url}/api/v1/predictions/{flow_a}",
            json={
                "question": "tokens:" + json.dumps(["abort-me "] * 60),
                "chatId": "shared-chat",
                "streaming": True,
            },
            headers={"Authorization": f"Bearer {key_a}"},
            timeout=20,
        )

    thread = threading.Thread(target=run)
    thread.start()
    # the run is under way once the model has its request
    deadline = time.monotonic() + 10
    while not mock_llm.count_prefix('tokens:["abort-me') and time.monotonic() < deadline:
        time.sleep(0.02)

    def abort(flow: str, key: str) -> int:
        return requests.post(
            f"{server.url}/api/v1/predictions/{flow}/abort",
            json={"chatId": "shared-chat"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=5,
        ).json()["aborted"]

    assert abort(flow_b, key_b) == 0  # b's key reaches b's runs only
    assert abort(flow_a, key_a) == 1
    thread.join(20)
    assert '"code":"aborted"' in result["response"].text
