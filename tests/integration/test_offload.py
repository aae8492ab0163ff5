"""Over HTTP: a crafted PDF sent to a keyless chatflow's upsert route is stopped at the time
limit with a 422 naming it while the server keeps answering; a full parsing lane answers
503 and one client past its share 429, both with Retry-After; wrong API keys cost one hash
each at most, a client past the failure limit gets 429, and a right key still works."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import RunningServer, start_server
from tests.integration.test_retrieval import qa_flow, store
from tests.mock_openai import MockOpenAI
from tests.pdfs import slow_pdf


def metric(server: RunningServer, name: str) -> float:
    text = requests.get(f"{server.url}/metrics", timeout=5).text
    found = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


PARSING = 'tailwinds_offload_tasks{lane="parsing"}'


class Upload(threading.Thread):
    """A slow PDF sent to the Flowise upsert route, without a key, in the background."""

    def __init__(self, url: str, name: str = "a.pdf") -> None:
        super().__init__(daemon=True)
        self.url, self.name = url, name
        self.response: requests.Response | None = None

    def run(self) -> None:
        files = [("files", (self.name, slow_pdf(), "application/pdf"))]
        self.response = requests.post(self.url, files=files, timeout=120)


def started(server: RunningServer, mock_llm: MockOpenAI, **env: str) -> Iterator[dict[str, Any]]:
    running = server
    store_id = store(running, mock_llm)
    chatflow_id = running.create_chatflow(qa_flow(mock_llm, store_id))["id"]
    yield {"server": running, "upsert": f"{running.url}/api/v1/vector/upsert/{chatflow_id}"}
    running.stop()


def begin_upload(server: RunningServer, url: str) -> Upload:
    upload = Upload(url)
    upload.start()
    while metric(server, PARSING) < 1:  # the loop answers /metrics while the PDF is read
        assert upload.is_alive(), upload.response and upload.response.text
        time.sleep(0.05)
    return upload


@pytest.fixture(scope="module")
def one_worker(
    tmp_path_factory: pytest.TempPathFactory, mock_llm: MockOpenAI
) -> Iterator[dict[str, Any]]:
    home: Path = tmp_path_factory.mktemp("offload")
    server = start_server(
        home,
        f"sqlite+aiosqlite:///{home / 't.db'}",
        TAILWINDS_PARSE_TIMEOUT_S="3",
        TAILWINDS_PARSE_WORKERS="1",
        TAILWINDS_PARSE_QUEUE="0",
        TAILWINDS_PARSE_PER_CLIENT="0",
    )
    yield from started(server, mock_llm)


def test_a_crafted_pdf_is_stopped_by_name_while_the_server_answers(
    one_worker: dict[str, Any],
) -> None:
    server: RunningServer = one_worker["server"]
    upload = begin_upload(server, one_worker["upsert"])
    for _ in range(5):
        began = time.monotonic()
        assert requests.get(f"{server.url}/api/v1/ping", timeout=5).text == "pong"
        assert time.monotonic() - began < 1.0  # generous: held, it would be seconds
    assert upload.is_alive()  # all answered while the PDF was still being read
    upload.join(60)
    assert upload.response is not None
    assert upload.response.status_code == 422, upload.response.text
    body = upload.response.json()
    assert body["code"] == "unreadable_file"
    assert body["error"].startswith("files.a.pdf: ") and "longer than 3 s" in body["error"]


def test_a_full_parsing_lane_answers_503_with_retry_after(one_worker: dict[str, Any]) -> None:
    server: RunningServer = one_worker["server"]
    upload = begin_upload(server, one_worker["upsert"])
    files = [("files", ("b.txt", b"A small file.", "text/plain"))]
    refused = requests.post(one_worker["upsert"], files=files, timeout=10)
    assert refused.status_code == 503, refused.text
    assert refused.json()["code"] == "server_busy"
    assert int(refused.headers["Retry-After"]) >= 1
    upload.join(60)
    assert upload.response is not None and upload.response.status_code == 422
    again = requests.post(one_worker["upsert"], files=files, timeout=30)
    assert again.status_code == 200, again.text  # the killed worker was replaced


def test_one_client_past_its_share_gets_429(
    tmp_path_factory: pytest.TempPathFactory, mock_llm: MockOpenAI
) -> None:
    home: Path = tmp_path_factory.mktemp("offload-per-client")
    server = start_server(
        home,
        f"sqlite+aiosqlite:///{home / 't.db'}",
        TAILWINDS_PARSE_TIMEOUT_S="3",
        TAILWINDS_PARSE_PER_CLIENT="1",
    )
    for setup in started(server, mock_llm):
        upload = begin_upload(server, setup["upsert"])
        files = [("files", ("b.txt", b"A small file.", "text/plain"))]
        refused = requests.post(setup["upsert"], files=files, timeout=10)
        assert refused.status_code == 429, refused.text
        assert refused.json()["code"] == "rate_limited" and "Retry-After" in refused.headers
        upload.join(60)


@pytest.fixture(scope="module")
def guarded(
    tmp_path_factory: pytest.TempPathFactory, mock_llm: MockOpenAI
) -> Iterator[dict[str, Any]]:
    home: Path = tmp_path_factory.mktemp("keys")
    server = start_server(
        home, f"sqlite+aiosqlite:///{home / 't.db'}", TAILWINDS_MAX_KEY_FAILURES_PER_MINUTE="3"
    )
    key = requests.post(f"{server.url}/api/v1/apikeys", json={"name": "app"}, timeout=10).json()
    node = {
        "id": "m",
        "type": "chatOpenAI",
        "inputs": {"model": "echo", "baseUrl": mock_llm.base_url},
    }
    chatflow = server.create_chatflow({"nodes": [node]}, apiKeyId=key["id"])
    yield {
        "server": server,
        "key": key["key"],
        "url": f"{server.url}/api/v1/predictions/{chatflow['id']}",
    }
    server.stop()


def predict(url: str, key: str) -> requests.Response:
    return requests.post(
        url, json={"question": "hi"}, headers={"Authorization": f"Bearer {key}"}, timeout=10
    )


def test_wrong_keys_cost_one_hash_each_then_429_and_a_right_key_still_works(
    guarded: dict[str, Any],
) -> None:
    server: RunningServer = guarded["server"]
    hashes = "tailwinds_api_key_hashes_total"
    assert predict(guarded["url"], guarded["key"]).status_code == 200
    assert metric(server, hashes) == 1
    wrong = "tw_" + "A" * 43  # of the issued format: it is hashed
    for _ in range(3):
        assert predict(guarded["url"], wrong).status_code == 401
    assert metric(server, hashes) == 2  # the repeats cost a lookup
    refused = predict(guarded["url"], "tw_" + "B" * 43)
    assert refused.status_code == 429, refused.text
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert metric(server, hashes) == 2
    assert predict(guarded["url"], guarded["key"]).status_code == 200  # known: no hash
    log = server.log()
    assert guarded["key"] not in log and wrong not in log
