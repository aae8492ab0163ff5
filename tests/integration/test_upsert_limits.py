"""What one upsert may cost: documents and chunks capped (413 naming the field or file,
before any embedding) on both upsert routes; a large upsert stored whole, in batches,
while the server keeps answering; a URL upsert takes its parsing place before it
downloads, and a page is capped by TAILWINDS_MAX_PAGE_BYTES."""

from __future__ import annotations

import http.server
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

CAP = 300  # documents, and chunks, one upsert of the `limited` server may hold
PAGE_CAP = 50_000


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("limited")
    running = start_server(
        home,
        f"sqlite+aiosqlite:///{home / 't.db'}",
        TAILWINDS_MAX_UPSERT_DOCUMENTS=str(CAP),
        TAILWINDS_MAX_UPSERT_CHUNKS=str(CAP),
        TAILWINDS_MAX_PAGE_BYTES=str(PAGE_CAP),
        TAILWINDS_INGEST_PRIVATE_URLS="true",
        TAILWINDS_PARSE_PER_CLIENT="1",
    )
    yield running
    running.stop()


def docs(n: int, prefix: str = "d") -> list[dict[str, Any]]:
    return [
        {"pageContent": f"note {i} of {prefix}", "metadata": {"source": f"{prefix}-{i}"}}
        for i in range(n)
    ]


def chunk_count(server: RunningServer, store_id: str) -> int:
    got = requests.get(f"{server.url}/api/v1/document-stores/{store_id}", timeout=10)
    assert got.status_code == 200, got.text
    return int(got.json()["chunks"])


def refused_413(response: requests.Response, named: str) -> None:
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "payload_too_large"
    assert named in response.json()["error"], response.text


def test_caps_on_the_document_store_upsert(limited: RunningServer, mock_llm: MockOpenAI) -> None:
    store_id = store(limited, mock_llm)
    url = f"{limited.url}/api/v1/document-stores/{store_id}/upsert"
    refused_413(requests.post(url, json={"documents": docs(CAP + 1)}, timeout=30), "documents")
    # in the background too: refused before the job starts
    refused_413(
        requests.post(
            url, params={"background": "true"}, json={"documents": docs(CAP + 1)}, timeout=30
        ),
        "documents",
    )
    # one document that splits into more chunks than the cap (chunkSize 200)
    long_text = " ".join(f"word{i}" for i in range(CAP * 40))
    one = [{"pageContent": long_text, "metadata": {"source": "long"}}]
    refused_413(requests.post(url, json={"documents": one}, timeout=60), "chunks")
    csv = b"name\n" + b"".join(b"row %d\n" % i for i in range(CAP + 1))
    files = [("files", ("rows.csv", csv, "text/csv"))]
    refused_413(requests.post(url, files=files, timeout=60), "rows.csv")
    assert chunk_count(limited, store_id) == 0
    # at the cap: taken
    done = requests.post(url, json={"documents": docs(CAP)}, timeout=60)
    assert done.status_code == 200 and done.json()["chunks"] == CAP, done.text


def test_caps_on_the_chatflow_upsert_route(limited: RunningServer, mock_llm: MockOpenAI) -> None:
    store_id = store(limited, mock_llm)
    chatflow_id = limited.create_chatflow(qa_flow(mock_llm, store_id))["id"]  # no API key
    url = f"{limited.url}/api/v1/vector/upsert/{chatflow_id}"
    refused_413(requests.post(url, json={"documents": docs(CAP + 1)}, timeout=30), "documents")
    csv = b"name\n" + b"".join(b"row %d\n" % i for i in range(CAP + 1))
    small = [("files", ("a.txt", b"A small file.", "text/plain"))]
    files = [*small, ("files", ("rows.csv", csv, "text/csv"))]
    refused_413(requests.post(url, files=files, timeout=60), "rows.csv")
    assert chunk_count(limited, store_id) == 0


def test_a_large_upsert_is_stored_whole_while_the_server_answers(
    server: RunningServer, mock_llm: MockOpenAI
) -> None:
    """More chunks and sources than one database batch (1,000), on SQLite and PostgreSQL;
    /api/v1/ping answered all along (a generous bound: no stall of seconds)."""
    store_id = store(server, mock_llm)
    url = f"{server.url}/api/v1/document-stores/{store_id}/upsert"
    many = docs(2_500, "big")
    results: list[requests.Response] = []

    def upsert_twice() -> None:
        for _ in range(2):  # the second replaces every source of the first
            results.append(requests.post(url, json={"documents": many}, timeout=300))

    worker = threading.Thread(target=upsert_twice)
    worker.start()
    slowest = 0.0
    pings = 0
    while worker.is_alive():
        started = time.monotonic()
        assert requests.get(f"{server.url}/api/v1/ping", timeout=30).text == "pong"
        slowest = max(slowest, time.monotonic() - started)
        pings += 1
    worker.join()
    assert [r.status_code for r in results] == [200, 200], [r.text for r in results]
    assert results[0].json()["chunks"] == 2_500
    assert results[1].json()["replaced"] == 2_500 and results[1].json()["embedded"] == 0
    assert chunk_count(server, store_id) == 2_500
    assert pings >= 1 and slowest < 5, (pings, slowest)


@pytest.fixture
def held_page() -> Iterator[dict[str, Any]]:
    """A page server whose /slow.txt answers only once `release` is set; `arrived` is set
    when a request for it comes in, `hits` counts them. /big.txt is over PAGE_CAP."""
    arrived, release = threading.Event(), threading.Event()
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            if self.path == "/slow.txt":
                arrived.set()
                release.wait(60)
                data = b"The slow page says the harbour opens at dawn."
            else:
                data = b"x " * PAGE_CAP
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield {
        "url": f"http://127.0.0.1:{httpd.server_address[1]}",
        "arrived": arrived,
        "release": release,
        "hits": hits,
    }
    release.set()
    httpd.shutdown()


def test_a_url_upsert_takes_its_place_before_downloading(
    limited: RunningServer, mock_llm: MockOpenAI, held_page: dict[str, Any], tmp_path: Path
) -> None:
    store_id = store(limited, mock_llm)
    url = f"{limited.url}/api/v1/document-stores/{store_id}/upsert"
    slow = {"urls": [f"{held_page['url']}/slow.txt"]}
    first: list[requests.Response] = []
    worker = threading.Thread(
        target=lambda: first.append(requests.post(url, json=slow, timeout=90))
    )
    worker.start()
    try:
        assert held_page["arrived"].wait(30)
        # this client holds its one parsing place (TAILWINDS_PARSE_PER_CLIENT=1) while its
        # page downloads: a second URL upsert is refused before it fetches anything
        refused = requests.post(url, json=slow, timeout=30)
        assert refused.status_code == 429, refused.text
        assert refused.json()["code"] == "rate_limited"
        assert held_page["hits"] == ["/slow.txt"]
    finally:
        held_page["release"].set()
        worker.join(90)
    assert first and first[0].status_code == 200, first[0].text if first else "no answer"
    big = requests.post(url, json={"urls": [f"{held_page['url']}/big.txt"]}, timeout=30)
    refused_413(big, "urls.0")
    assert "TAILWINDS_MAX_PAGE_BYTES" in big.json()["error"]
