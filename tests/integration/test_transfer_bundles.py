"""`POST /api/v1/import` with files that are not what `export` writes: each is refused
whole with a 400 naming the field, before anything is written; and what `export` writes
comes back whole (the widget's settings and the MCP tool's included)."""

from __future__ import annotations

import base64
import secrets
from typing import Any

import pytest
import requests

from tailwinds.manage.transfer import _seal
from tests.conftest import RunningServer
from tests.mock_openai import MockOpenAI

PASSPHRASE = "correct horse battery staple"


def _flow(mock_llm: MockOpenAI) -> dict[str, Any]:
    node = {
        "id": "m",
        "type": "chatOpenAI",
        "inputs": {"model": "echo", "baseUrl": mock_llm.base_url},
    }
    return {"nodes": [node]}


def _counts(server: RunningServer) -> tuple[int, int]:
    chatflows = requests.get(f"{server.url}/api/v1/chatflows", timeout=5).json()
    credentials = requests.get(f"{server.url}/api/v1/credentials", timeout=5).json()
    return len(chatflows), len(credentials)


def _import(server: RunningServer, bundle: Any, passphrase: str | None = None) -> requests.Response:
    body: dict[str, Any] = {"bundle": bundle}
    if passphrase:
        body["passphrase"] = passphrase
    return requests.post(f"{server.url}/api/v1/import", json=body, timeout=30)


def _sealed(content: Any) -> dict[str, Any]:
    salt = secrets.token_bytes(16)
    token = _seal(PASSPHRASE, salt, content)
    return {
        "kdf": "scrypt",
        "n": 2**15,
        "r": 8,
        "p": 1,
        "salt": base64.b64encode(salt).decode(),
        "token": token,
    }


@pytest.mark.parametrize(
    ("broken", "named"),
    [
        ({"chatflows": ["not an object"]}, "bundle.chatflows.1"),
        ({"apiKeyId": {"id": "k"}}, "bundle.chatflows.1.apiKeyId"),
        ({"apiKeyId": ["k"]}, "bundle.chatflows.1.apiKeyId"),
        ({"flowData": [1, 2]}, "bundle.chatflows.1.flowData"),
        ({"name": 7}, "bundle.chatflows.1.name"),
        ({"allowedOrigins": "https://a.example"}, "bundle.chatflows.1.allowedOrigins"),
        (
            {"chatbotConfig": {"starterPrompts": "hi"}},
            "bundle.chatflows.1.chatbotConfig.starterPrompts",
        ),
        ({"format": "flowise"}, "bundle.format"),
        ({"chatflows": {"a": 1}}, "bundle.chatflows"),
    ],
)
def test_a_malformed_bundle_is_refused_whole_naming_the_field(
    sqlite_server: RunningServer, mock_llm: MockOpenAI, broken: dict[str, Any], named: str
) -> None:
    good = {"id": "a", "name": "fine", "flowData": _flow(mock_llm)}
    second = {"id": "b", "name": "second", "flowData": _flow(mock_llm)}
    bundle: dict[str, Any] = {
        "format": "tailwinds-export",
        "version": 1,
        "chatflows": [good, second],
    }
    if set(broken) <= {"format", "chatflows"}:
        bundle.update(broken)
        if broken.get("chatflows") == ["not an object"]:
            bundle["chatflows"] = [good, "not an object"]
    else:
        second.update(broken)
    before = _counts(sqlite_server)
    refused = _import(sqlite_server, bundle)
    assert refused.status_code == 400, refused.text
    assert named in refused.json()["error"], refused.json()
    assert _counts(sqlite_server) == before, "nothing written"


def test_nodes_that_are_not_a_list_are_the_chatflows_failure_not_the_servers(
    sqlite_server: RunningServer,
) -> None:
    bundle = {
        "format": "tailwinds-export",
        "chatflows": [{"name": "odd", "flowData": {"nodes": 5}}],
    }
    done = _import(sqlite_server, bundle)
    assert done.status_code == 200, done.text
    assert done.json()["chatflows"] == [] and done.json()["failed"][0]["name"] == "odd"


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (
            {"credentials": [{"id": "c", "name": "n", "provider": "openai", "data": "x"}]},
            "bundle.secrets.credentials.0.data",
        ),
        (
            {"credentials": [{"name": "n", "provider": "openai", "data": {}}]},
            "bundle.secrets.credentials.0.id",
        ),
        ({"credentials": "all"}, "bundle.secrets.credentials"),
        ({"flowData": {"a": [1]}}, "bundle.secrets.flowData.a"),
    ],
)
def test_sealed_secrets_in_the_wrong_shape_are_refused_before_anything_is_written(
    sqlite_server: RunningServer, mock_llm: MockOpenAI, content: dict[str, Any], named: str
) -> None:
    bundle = {
        "format": "tailwinds-export",
        "chatflows": [{"id": "a", "name": "fine", "flowData": _flow(mock_llm)}],
        "secrets": _sealed(
            {
                "credentials": [{"id": "ok", "name": "ok", "provider": "openai", "data": {}}],
                **content,
            }
        ),
    }
    before = _counts(sqlite_server)
    refused = _import(sqlite_server, bundle, PASSPHRASE)
    assert refused.status_code == 400, refused.text
    assert named in refused.json()["error"], refused.json()
    assert _counts(sqlite_server) == before


def test_every_setting_of_a_chatflow_comes_back(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    settings = {
        "allowedOrigins": ["https://shop.example"],
        "rateLimit": {"requests": 5, "windowS": 60},
        "resumeGraceSeconds": 30.0,
        "concurrentTurns": "queue",
        "approvalTimeoutSeconds": 120.0,
        "mcpTool": {"exposed": True, "name": "moved_tool", "description": "moves"},
        "chatbotConfig": {"title": "Moved", "starterPrompts": ["hello"]},
    }
    made = sqlite_server.create_chatflow(_flow(mock_llm), name="settings travel", **settings)
    bundle = requests.post(f"{sqlite_server.url}/api/v1/export", json={}, timeout=10).json()
    requests.delete(f"{sqlite_server.url}/api/v1/chatflows/{made['id']}", timeout=5)
    bundle["chatflows"] = [c for c in bundle["chatflows"] if c["id"] == made["id"]]
    done = _import(sqlite_server, bundle)
    assert done.status_code == 200 and not done.json()["failed"], done.text
    moved_id = done.json()["chatflows"][0]["id"]
    moved = requests.get(f"{sqlite_server.url}/api/v1/chatflows/{moved_id}", timeout=5).json()
    for name in settings:
        assert moved[name] == made[name], name
    assert moved["chatbotConfig"]["title"] == "Moved" and moved["mcpTool"]["name"] == "moved_tool"


def test_two_chatflows_of_one_id_are_refused(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    twice = [{"id": "a", "name": n, "flowData": _flow(mock_llm)} for n in ("one", "two")]
    refused = _import(sqlite_server, {"format": "tailwinds-export", "chatflows": twice})
    assert refused.status_code == 400 and "each chatflow's id once" in refused.json()["error"]


def test_a_guarded_chatflow_that_fails_leaves_no_key_behind(sqlite_server: RunningServer) -> None:
    keys = requests.get(f"{sqlite_server.url}/api/v1/apikeys", timeout=5).json()
    bundle = {
        "format": "tailwinds-export",
        "chatflows": [
            {
                "name": "guarded",
                "apiKeyId": "elsewhere",
                "flowData": {"nodes": [{"id": "x", "type": "nope"}]},
            }
        ],
    }
    done = _import(sqlite_server, bundle)
    assert done.status_code == 200 and done.json()["apiKeys"] == [], done.text
    assert done.json()["failed"][0]["name"] == "guarded"
    assert requests.get(f"{sqlite_server.url}/api/v1/apikeys", timeout=5).json() == keys


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ('{"name": "n", "flowData": %s, "rateLimit": {"windowS": 1e999}}', "rateLimit.windowS"),
        ('{"name": "n", "flowData": %s, "resumeGraceSeconds": NaN}', "resumeGraceSeconds"),
        (
            '{"name": "n", "flowData": %s, "rateLimit": {"requests": 18446744073709551616}}',
            "rateLimit.requests",
        ),
        (
            '{"name": "n", "flowData": %s, "chatbotConfig": {"uploads": {"maxFileBytes": 1e20}}}',
            "maxFileBytes",
        ),
        ('{"name": "\\ud800", "flowData": %s}', "name"),
        ('{"name": "n", "flowData": %s, "allowedOverrides": ["\\udc00"]}', "allowedOverrides"),
    ],
)
def test_a_setting_that_cannot_come_back_as_given_is_refused(
    sqlite_server: RunningServer, mock_llm: MockOpenAI, body: str, named: str
) -> None:
    import json

    chatflow = body.replace("%s", json.dumps(_flow(mock_llm)))
    bundle = '{"format": "tailwinds-export", "chatflows": [' + chatflow + "]}"
    for path, text in (("chatflows", chatflow), ("import", '{"bundle": ' + bundle + "}")):
        before = _counts(sqlite_server)
        response = requests.post(
            f"{sqlite_server.url}/api/v1/{path}",
            data=text,
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        assert response.status_code in (200, 400), response.text
        said = response.json().get("error") or response.json()["failed"][0]["error"]
        assert named in said, said
        assert _counts(sqlite_server) == before


def test_flow_data_past_what_json_stores_is_refused_naming_the_spot(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    flow = _flow(mock_llm)
    flow["nodes"][0]["inputs"]["maxTokens"] = 2**64
    made = requests.post(
        f"{sqlite_server.url}/api/v1/chatflows", json={"name": "big", "flowData": flow}, timeout=10
    )
    assert made.status_code == 400, made.text
    assert (
        "flowData: nodes.0.inputs.maxTokens: expected an integer of at most 64 bits"
        in made.json()["error"]
    )


def test_nesting_past_what_json_stores_is_a_failure_not_a_500(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    flow: dict[str, Any] = {**_flow(mock_llm), "edges": []}
    deep: list[Any] = []
    flow["v"] = deep
    for _ in range(300):
        deep.append([])
        deep = deep[0]
    keys = requests.get(f"{sqlite_server.url}/api/v1/apikeys", timeout=5).json()
    made = requests.post(
        f"{sqlite_server.url}/api/v1/chatflows", json={"name": "deep", "flowData": flow}, timeout=10
    )
    assert made.status_code == 400 and "levels of nesting" in made.json()["error"], made.text
    bundle = {
        "format": "tailwinds-export",
        "chatflows": [{"name": "deep", "apiKeyId": "elsewhere", "flowData": flow}],
    }
    done = _import(sqlite_server, bundle)
    assert done.status_code == 200, done.text
    assert "levels of nesting" in done.json()["failed"][0]["error"]
    assert requests.get(f"{sqlite_server.url}/api/v1/apikeys", timeout=5).json() == keys


def test_a_long_name_makes_a_key_name_that_fits(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    bundle = {
        "format": "tailwinds-export",
        "chatflows": [{"name": "n" * 200, "apiKeyId": "elsewhere", "flowData": _flow(mock_llm)}],
    }
    done = _import(sqlite_server, bundle)
    assert done.status_code == 200 and not done.json()["failed"], done.text
    assert len(done.json()["apiKeys"][0]["name"]) == 200


@pytest.mark.parametrize(
    ("data", "named"),
    [('{"apiKey": "\\ud800"}', "data"), ('{"apiKey": 5}', "data.apiKey")],
)
def test_credentials_are_stored_as_given_or_refused(
    sqlite_server: RunningServer, data: str, named: str
) -> None:
    before = _counts(sqlite_server)
    refused = requests.post(
        f"{sqlite_server.url}/api/v1/credentials",
        data='{"name": "c", "provider": "openai", "data": ' + data + "}",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert refused.status_code == 400 and named in refused.json()["error"], refused.text
    sealed = {
        "credentials": [{"id": "c", "name": "c", "provider": "openai", "data": {"apiKey": 5}}]
    }
    bundle = {"format": "tailwinds-export", "chatflows": [], "secrets": _sealed(sealed)}
    refused = _import(sqlite_server, bundle, PASSPHRASE)
    assert refused.status_code == 400, refused.text
    assert "bundle.secrets.credentials.0.data.apiKey" in refused.json()["error"]
    assert _counts(sqlite_server) == before
