"""Risky overrides through the API: refused at save naming `allowedOverrides[i]` (or the
node's mark), refused at predict, and a marked destination used without the operator's
credential."""

from __future__ import annotations

from typing import Any

import requests

from tests.conftest import RunningServer
from tests.mock_openai import MockOpenAI


def save(server: RunningServer, node: dict[str, Any], allowed: list[str]) -> requests.Response:
    return requests.post(
        f"{server.url}/api/v1/chatflows",
        json={"name": "o", "flowData": {"nodes": [node]}, "allowedOverrides": allowed},
        timeout=10,
    )


def predict(server: RunningServer, chatflow_id: str, **overrides: Any) -> requests.Response:
    return requests.post(
        f"{server.url}/api/v1/predictions/{chatflow_id}",
        json={"question": "hi", "overrideConfig": overrides},
        timeout=15,
    )


def test_risky_overrides_at_save_and_predict(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    credential = requests.post(
        f"{sqlite_server.url}/api/v1/credentials",
        json={"name": "prod", "provider": "openai", "data": {"apiKey": "sk-operator-0001"}},
        timeout=10,
    ).json()["id"]
    node = {
        "id": "m",
        "type": "chatOpenAI",
        "inputs": {"model": "echo", "baseUrl": mock_llm.base_url, "credential": credential},
    }
    for allowed, index in ((["baseUrl"], 0), (["temperature", "credential"], 1)):
        refused = save(sqlite_server, node, allowed)
        assert refused.status_code == 400
        assert refused.json()["error"].startswith(f"allowedOverrides[{index}]:")

    marked = dict(node, riskyOverrides=["baseUrl"])
    refused = save(sqlite_server, marked, ["baseUrl"])
    assert refused.status_code == 400
    assert refused.json()["error"].startswith("nodes[m].riskyOverrides:")

    # no saved credential: the caller's own server, with the caller's own key if any
    keyless = dict(marked, inputs={"model": "echo", "baseUrl": "http://127.0.0.1:9/v1"})
    saved = save(sqlite_server, keyless, ["baseUrl", "temperature"])
    assert saved.status_code == 201, saved.text
    chatflow_id = saved.json()["id"]
    answered = predict(sqlite_server, chatflow_id, baseUrl=mock_llm.base_url)
    assert answered.status_code == 200, answered.text
    refused = predict(sqlite_server, chatflow_id, apiKey="sk-x")
    assert refused.status_code == 400
    assert refused.json()["error"].startswith("overrideConfig.apiKey:")
