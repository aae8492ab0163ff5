"""Chatflow management over HTTP: CRUD, and validation on save naming node and field."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.conftest import RunningServer, start_server

MODEL = {"id": "chat_0", "type": "chatOpenAI", "inputs": {"model": "gpt-4o-mini"}}


def create(server: RunningServer, flow_data: Any, **fields: Any) -> requests.Response:
    return requests.post(
        f"{server.url}/api/v1/chatflows",
        json={"name": "t", "flowData": flow_data, **fields},
        timeout=5,
    )


def test_crud(server: RunningServer) -> None:
    created = create(server, {"nodes": [MODEL], "edges": []})
    assert created.status_code == 201
    body = created.json()
    assert set(body) >= {"id", "name", "flowData", "createdDate", "updatedDate"}
    url = f"{server.url}/api/v1/chatflows/{body['id']}"
    assert requests.get(url, timeout=5).json()["flowData"] == {"nodes": [MODEL], "edges": []}
    assert body["id"] in {
        c["id"] for c in requests.get(f"{server.url}/api/v1/chatflows", timeout=5).json()
    }
    renamed = requests.put(url, json={"name": "renamed"}, timeout=5)
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "renamed"
    assert renamed.json()["version"] == 2
    assert renamed.json()["flowData"] == body["flowData"]
    assert requests.delete(url, timeout=5).status_code == 204
    assert requests.get(url, timeout=5).status_code == 404
    assert requests.delete(url, timeout=5).status_code == 404
    assert requests.put(url, json={"name": "x"}, timeout=5).status_code == 404


CHAIN = [
    MODEL,
    {"id": "prompt_0", "type": "promptTemplate", "inputs": {"template": "Answer: {question}"}},
    {"id": "memory_0", "type": "bufferWindowMemory", "inputs": {"k": 3}},
    {"id": "chain_0", "type": "conversationChain", "inputs": {}},
]
CHAIN_EDGES = [
    {"source": "chat_0", "target": "chain_0", "targetInput": "model"},
    {"source": "prompt_0", "target": "chain_0", "targetInput": "prompt"},
    {"source": "memory_0", "target": "chain_0", "targetInput": "memory"},
]

INVALID = [
    ({"nodes": [{"id": "x", "type": "nope"}]}, "nodes[x].type: unknown node type 'nope'"),
    (
        {"nodes": [{"id": "chat_0", "type": "chatOpenAI", "inputs": {}}]},
        "nodes[chat_0].inputs.model: required",
    ),
    (
        {
            "nodes": [
                {
                    "id": "chat_0",
                    "type": "chatOpenAI",
                    "inputs": {"model": "m", "temperature": "hot"},
                }
            ]
        },
        "nodes[chat_0].inputs.temperature: expected a number",
    ),
    (
        {"nodes": [{"id": "chat_0", "type": "chatOpenAI", "inputs": {"model": "m", "colour": 1}}]},
        "nodes[chat_0].inputs.colour: unknown field",
    ),
    (
        {
            "nodes": CHAIN,
            "edges": [
                *CHAIN_EDGES,
                {"source": "ghost", "target": "chain_0", "targetInput": "memory"},
            ],
        },
        "names a missing node 'ghost'",
    ),
    (
        {
            "nodes": CHAIN,
            "edges": [
                *CHAIN_EDGES[:2],
                {"source": "memory_0", "target": "chain_0", "targetInput": "tools"},
            ],
        },
        "nodes[chain_0].inputs.tools: conversationChain has no input 'tools'",
    ),
    (
        {
            "nodes": CHAIN,
            "edges": [
                *CHAIN_EDGES[1:],
                {"source": "prompt_0", "target": "chain_0", "targetInput": "model"},
            ],
        },
        "nodes[chain_0].inputs.model",
    ),
    (
        {"nodes": CHAIN, "edges": CHAIN_EDGES[1:]},
        "nodes[chain_0].inputs.model: needs an edge from a chatModel node",
    ),
    (
        {
            "nodes": [MODEL, {**MODEL, "id": "chat_1"}],
            "edges": [],
        },
        "exactly one answering node",
    ),
    (
        {"nodes": [MODEL, {"id": "memory_0", "type": "bufferWindowMemory"}], "edges": []},
        "exactly one answering node",
    ),
    ({"nodes": [{"id": "memory_0", "type": "bufferWindowMemory"}]}, "cannot answer"),
    (
        {
            "nodes": [
                MODEL,
                {
                    "id": "p",
                    "type": "promptTemplate",
                    "inputs": {"template": "{question.__class__}"},
                },
                CHAIN[3],
            ],
            "edges": [
                CHAIN_EDGES[0],
                {"source": "p", "target": "chain_0", "targetInput": "prompt"},
            ],
        },
        "nodes[p].inputs.template",
    ),
    ({"nodes": []}, "flowData.nodes"),
    ({"edges": []}, "flowData.nodes: required"),
    # its shape is checked before its secrets are looked for (a 500, once)
    ({"nodes": 5}, "flowData.nodes"),
    ({"nodes": True, "edges": []}, "flowData.nodes"),
]


@pytest.mark.parametrize(("flow_data", "message"), INVALID)
def test_invalid_flows_are_refused_on_save(
    server: RunningServer, flow_data: Any, message: str
) -> None:
    response = create(server, flow_data)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


@pytest.mark.parametrize(("flow_data", "message"), INVALID[-2:])
def test_invalid_flows_are_refused_on_update(
    server: RunningServer, flow_data: Any, message: str
) -> None:
    made = create(server, {"nodes": [MODEL]}).json()
    response = requests.put(
        f"{server.url}/api/v1/chatflows/{made['id']}", json={"flowData": flow_data}, timeout=5
    )
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


def test_self_edge_is_refused(server: RunningServer) -> None:
    nodes = [MODEL, {"id": "c1", "type": "conversationChain"}]
    edges = [{"source": "c1", "target": "c1", "targetInput": "model"}]
    response = create(server, {"nodes": nodes, "edges": edges})
    assert response.status_code == 400
    assert "expects a chatModel node" in response.json()["error"]


def test_wrong_field_types_in_management_body(server: RunningServer) -> None:
    response = requests.post(
        f"{server.url}/api/v1/chatflows", json={"name": 3, "flowData": {}}, timeout=5
    )
    assert response.status_code == 400
    assert "name: expected a string" in response.json()["error"]
    assert "detail" in response.json()
    # strict: JSON's true is not the number 1, nor "3" the number 3
    for wrong, named in [
        ({"chatbotConfig": {"uploads": {"maxFiles": False}}}, "chatbotConfig.uploads.maxFiles"),
        ({"rateLimit": {"requests": True}}, "rateLimit.requests"),
        ({"resumeGraceSeconds": "30"}, "resumeGraceSeconds"),
        ({"mcpTool": {"exposed": 1}}, "mcpTool.exposed"),
    ]:
        response = create(server, {"nodes": [MODEL]}, **wrong)
        assert response.status_code == 400, (wrong, response.text)
        assert named in response.json()["error"], response.json()


def test_unknown_api_key_id_and_override_names(server: RunningServer) -> None:
    response = create(server, {"nodes": [MODEL]}, apiKeyId="nope")
    assert response.status_code == 400
    assert response.json()["error"].startswith("apiKeyId:")
    response = create(server, {"nodes": [MODEL]}, allowedOverrides=["colour"])
    assert response.status_code == 400
    assert response.json()["error"].startswith("allowedOverrides[0]:")


def test_node_catalogue(server: RunningServer) -> None:
    nodes = {n["type"]: n for n in requests.get(f"{server.url}/api/v1/nodes", timeout=5).json()}
    assert {"chatOpenAI", "promptTemplate", "conversationChain", "bufferWindowMemory"} <= set(nodes)
    assert "baseUrl" in nodes["chatOpenAI"]["inputs"]["properties"]
    assert nodes["conversationChain"]["ports"]["model"] == {
        "category": "chatModel",
        "required": True,
        "many": False,
    }
    assert nodes["toolAgent"]["ports"]["tools"]["many"] is True


def test_openapi_docs(server: RunningServer) -> None:
    assert requests.get(f"{server.url}/docs", timeout=5).status_code == 200
    spec = requests.get(f"{server.url}/openapi.json", timeout=5).json()
    assert "/api/v1/predictions/{chatflow_id}" in spec["paths"]


def test_admin_token_guards_management(tmp_path: Any) -> None:
    token = "admin-secret-token"
    server = start_server(
        tmp_path, f"sqlite+aiosqlite:///{tmp_path / 't.db'}", TAILWINDS_ADMIN_TOKEN=token
    )
    try:
        url = f"{server.url}/api/v1/chatflows"
        assert requests.get(url, timeout=5).status_code == 401
        assert (
            requests.get(url, headers={"Authorization": "Bearer wrong"}, timeout=5).status_code
            == 401
        )
        assert (
            requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code
            == 200
        )
        assert (
            requests.post(f"{server.url}/api/v1/apikeys", json={"name": "x"}, timeout=5).status_code
            == 401
        )
        assert requests.get(f"{server.url}/api/v1/ping", timeout=5).text == "pong"
    finally:
        server.stop()
    assert token not in server.log()
