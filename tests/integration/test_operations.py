"""Health, readiness, metrics, CORS and rate limits over real HTTP."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
import requests

from tailwinds.logs import JSONFormatter, RedactSecrets
from tests.conftest import RunningServer, start_server
from tests.mock_openai import MockOpenAI


def chatflow(
    server: RunningServer, mock_llm: MockOpenAI, model: str = "echo", **fields: Any
) -> str:
    node = {
        "id": "m",
        "type": "chatOpenAI",
        "inputs": {"model": model, "baseUrl": mock_llm.base_url},
    }
    return server.create_chatflow({"nodes": [node]}, **fields)["id"]


def test_health_ready_and_metrics(sqlite_server: RunningServer, mock_llm: MockOpenAI) -> None:
    assert requests.get(f"{sqlite_server.url}/api/v1/health", timeout=5).json() == {"status": "ok"}
    ready = requests.get(f"{sqlite_server.url}/api/v1/ready", timeout=5)
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok"}
    chatflow_id = chatflow(sqlite_server, mock_llm)
    requests.post(
        f"{sqlite_server.url}/api/v1/predictions/{chatflow_id}",
        json={"question": "metrics", "streaming": True},
        timeout=10,
    )
    text = requests.get(f"{sqlite_server.url}/metrics", timeout=5).text
    assert (
        'tailwinds_http_requests_total{route="/api/v1/predictions/{chatflow_id}",status="200"}'
        in text
    )
    assert 'tailwinds_runs_total{status="complete"}' in text
    assert "tailwinds_time_to_first_token_seconds_bucket" in text
    assert "tailwinds_active_streams 0.0" in text
    assert "process_cpu_seconds_total" in text


def test_cors_per_chatflow(sqlite_server: RunningServer, mock_llm: MockOpenAI) -> None:
    chatflow_id = chatflow(sqlite_server, mock_llm, allowedOrigins=["https://app.example.com"])
    url = f"{sqlite_server.url}/api/v1/predictions/{chatflow_id}"
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    ok = requests.options(
        url, headers={"Origin": "https://app.example.com", **preflight}, timeout=5
    )
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "POST" in ok.headers["access-control-allow-methods"]
    denied = requests.options(
        url, headers={"Origin": "https://evil.example", **preflight}, timeout=5
    )
    assert denied.status_code == 403
    assert "access-control-allow-origin" not in denied.headers

    streamed = requests.post(
        url,
        json={"question": "cors", "streaming": True},
        headers={"Origin": "https://app.example.com"},
        timeout=10,
    )
    assert streamed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "event: end" in streamed.text
    refused_origin = requests.post(
        url, json={"question": "cors"}, headers={"Origin": "https://evil.example"}, timeout=10
    )
    assert "access-control-allow-origin" not in refused_origin.headers
    no_origin = requests.post(url, json={"question": "cors"}, timeout=10)
    assert "access-control-allow-origin" not in no_origin.headers
    # errors carry the header too, so a page can read them
    app = {"Origin": "https://app.example.com"}
    bad = requests.post(
        url, data=b"{", headers={**app, "Content-Type": "application/json"}, timeout=5
    )
    assert (
        bad.status_code == 400
        and bad.headers["access-control-allow-origin"] == "https://app.example.com"
    )
    # so do the refusals made before any route: a body that is not JSON
    plain = requests.post(url, data=b"{}", headers={**app, "Content-Type": "text/plain"}, timeout=5)
    assert plain.status_code == 415
    assert plain.headers["access-control-allow-origin"] == "https://app.example.com"


def test_invalid_origin_is_refused_on_save(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    node = {
        "id": "m",
        "type": "chatOpenAI",
        "inputs": {"model": "echo", "baseUrl": mock_llm.base_url},
    }
    response = requests.post(
        f"{sqlite_server.url}/api/v1/chatflows",
        json={
            "name": "x",
            "flowData": {"nodes": [node]},
            "allowedOrigins": ["app.example.com/path"],
        },
        timeout=5,
    )
    assert response.status_code == 400
    assert "allowedOrigins.0" in response.json()["error"]


def test_rate_limit_per_window(sqlite_server: RunningServer, mock_llm: MockOpenAI) -> None:
    chatflow_id = chatflow(sqlite_server, mock_llm, rateLimit={"requests": 2, "windowS": 60})
    url = f"{sqlite_server.url}/api/v1/predictions/{chatflow_id}"
    for _ in range(2):
        assert requests.post(url, json={"question": "limited"}, timeout=10).status_code == 200
    for streaming in (True, False):
        refused = requests.post(
            url, json={"question": "limited", "streaming": streaming}, timeout=10
        )
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.json()["code"] == "rate_limited"


def test_rate_limit_concurrent(sqlite_server: RunningServer, mock_llm: MockOpenAI) -> None:
    chatflow_id = chatflow(sqlite_server, mock_llm, model="paced:0.05", rateLimit={"concurrent": 1})
    url = f"{sqlite_server.url}/api/v1/predictions/{chatflow_id}"
    with requests.post(
        url, json={"question": "slow one", "streaming": True}, stream=True, timeout=10
    ) as first:
        assert first.status_code == 200
        second = requests.post(url, json={"question": "slow two", "streaming": True}, timeout=10)
        assert second.status_code == 429
        first.content  # noqa: B018  (read to the end)
    assert requests.post(url, json={"question": "after"}, timeout=10).status_code == 200


def test_rate_limit_per_api_key_spans_its_chatflows(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    url = sqlite_server.url
    limited = requests.post(
        f"{url}/api/v1/apikeys",
        json={"name": "metered", "rateLimit": {"requests": 3, "windowS": 60}},
        timeout=5,
    ).json()
    assert limited["rateLimit"] == {"requests": 3, "windowS": 60}
    free = requests.post(f"{url}/api/v1/apikeys", json={"name": "free"}, timeout=5).json()
    first, second = (chatflow(sqlite_server, mock_llm, apiKeyId=limited["id"]) for _ in "ab")
    other = chatflow(sqlite_server, mock_llm, apiKeyId=free["id"])

    def ask(chatflow_id: str, key: str) -> requests.Response:
        return requests.post(
            f"{url}/api/v1/predictions/{chatflow_id}",
            json={"question": "metered"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )

    assert [ask(c, limited["key"]).status_code for c in (first, second, first)] == [200] * 3
    refused = ask(second, limited["key"])
    assert refused.status_code == 429, "three predictions per minute for the key, over both"
    assert "this API key" in refused.json()["error"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert ask(other, free["key"]).status_code == 200, "another key is not held back"
    # lifting the key's limit takes effect at once
    lifted = requests.put(
        f"{url}/api/v1/apikeys/{limited['id']}", json={"rateLimit": None}, timeout=5
    ).json()
    assert lifted["rateLimit"] is None
    assert ask(first, limited["key"]).status_code == 200


@pytest.mark.parametrize("trusted", [False, True])
def test_x_forwarded_for_counts_only_from_a_trusted_proxy(tmp_path: Any, trusted: bool) -> None:
    env = {"TAILWINDS_TRUSTED_PROXIES": "127.0.0.1"} if trusted else {}
    server = start_server(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 't.db'}", **env)
    try:
        # no admin token: management is for this machine only, decided by the client address
        spoofed = requests.get(
            f"{server.url}/api/v1/chatflows",
            headers={"X-Forwarded-For": "203.0.113.9"},
            timeout=5,
        )
        plain = requests.get(f"{server.url}/api/v1/chatflows", timeout=5)
    finally:
        server.stop()
    assert plain.status_code == 200
    # untrusted: the header is ignored, the caller is the loopback connection it is;
    # trusted: the proxy says the caller is 203.0.113.9, which is not this machine
    assert spoofed.status_code == (403 if trusted else 200)


def test_request_ids_are_echoed_and_logged(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = chatflow(sqlite_server, mock_llm)
    url = f"{sqlite_server.url}/api/v1/predictions/{chatflow_id}"
    mine = requests.post(
        url, json={"question": "traced"}, headers={"X-Request-ID": "trace-42.a"}, timeout=10
    )
    assert mine.headers["x-request-id"] == "trace-42.a"
    made = requests.post(url, json={"question": "traced"}, timeout=10).headers["x-request-id"]
    assert len(made) == 32
    junk = requests.post(
        url, json={"question": "traced"}, headers={"X-Request-ID": "no spaces; allowed"}, timeout=10
    )
    assert junk.headers["x-request-id"] != "no spaces; allowed"
    message_id = mine.json()["messageId"]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [line for line in sqlite_server.log().splitlines() if message_id in line]
        if lines:
            break
        time.sleep(0.05)
    assert lines and "[trace-42.a]" in lines[0], lines


def test_log_records_are_redacted() -> None:
    record = logging.LogRecord(
        "x",
        logging.INFO,
        __file__,
        1,
        "key %s and %s",
        ("sk-proj-abcdef123456", "Bearer tw_zzzzzzzzzzzzzzzzzzzzzzzz"),
        None,
    )
    assert RedactSecrets().filter(record)
    line = json.loads(JSONFormatter().format(record))
    assert line["message"] == "key *** and ***"
    assert line["level"] == "INFO"


@pytest.mark.parametrize("fmt", ["json"])
def test_json_logs(tmp_path: Any, fmt: str) -> None:
    server = start_server(
        tmp_path, f"sqlite+aiosqlite:///{tmp_path / 't.db'}", TAILWINDS_LOG_FORMAT=fmt
    )
    server.stop()
    lines = [line for line in server.log().splitlines() if line.startswith("{")]
    assert lines and all(json.loads(line)["message"] is not None for line in lines)


def test_schemathesis_finds_no_server_error_or_schema_violation(
    sqlite_server: RunningServer,
) -> None:
    """Every route fuzzed from the OpenAPI schema: no 5xx, statuses and bodies as
    documented. (`positive_data_acceptance` is left out: a chatflow's graph or a store's
    embedding config can be valid JSON for the schema and still be refused, by design.)"""
    import subprocess
    import sys
    from pathlib import Path

    schemathesis = Path(sys.executable).parent / "schemathesis"
    result = subprocess.run(
        [
            str(schemathesis),
            "run",
            f"{sqlite_server.url}/openapi.json",
            "--max-examples",
            "10",
            "--exclude-checks",
            "positive_data_acceptance",
            "--seed",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:]


def test_ready_can_check_the_model_servers(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    import socket

    chatflow(sqlite_server, mock_llm)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens once the socket is closed
    node = {
        "id": "m",
        "type": "chatOpenAI",
        "inputs": {"model": "x", "baseUrl": f"http://127.0.0.1:{closed}/v1"},
    }
    sqlite_server.create_chatflow({"nodes": [node]})
    assert requests.get(f"{sqlite_server.url}/api/v1/ready", timeout=5).status_code == 200
    checked = requests.get(f"{sqlite_server.url}/api/v1/ready?models=true", timeout=10)
    assert checked.status_code == 503
    checks = checked.json()["checks"]
    assert checks[f"model 127.0.0.1:{mock_llm.port}"] == "ok"
    assert checks[f"model 127.0.0.1:{closed}"].startswith("error")
    assert checks["model local"] == "ok"  # the first-start chatflow runs the local model
    assert checks["database"] == "ok"
