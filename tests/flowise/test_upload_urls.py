"""A prediction's `uploads` item of `type: "url"` (Flowise's field): the server fetches the
URL under the outbound policy of caller-steered requests (no loopback unless the operator
names it in TAILWINDS_OUTBOUND_NETWORKS), within the chatflow's `maxFileBytes`, and treats
the bytes like a `file` item of that mime."""

from __future__ import annotations

import base64
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningServer, start_server
from tests.flowise.test_uploads import PNG, ask, flow
from tests.mock_openai import MockOpenAI

# path: (Content-Type, body)
PAGES = {
    "/dot.png": ("image/png", base64.b64decode(PNG)),
    "/notes.txt": ("text/plain; charset=utf-8", b"the meeting moved to Thursday"),
    "/big.png": ("image/png", base64.b64decode(PNG) + b"\0" * 5000),
    "/fake.png": ("text/html", b"<html>not a picture</html>"),
}


FETCHED: list[str] = []  # the paths the server was asked for, in order


@pytest.fixture(scope="module")
def files() -> Iterator[str]:
    """A real HTTP server on this machine serving PAGES, and a redirect to /dot.png."""

    class Files(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            FETCHED.append(self.path)
            if self.path == "/moved":
                self.send_response(302)
                self.send_header("Location", "/dot.png")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path = self.path.split("?")[0]
            if path not in PAGES:
                self.send_error(404)
                return
            content_type, body = PAGES[path]
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose operator opened loopback to outbound requests (and capped uploads at
    2000 bytes, which bounds a URL's body whatever a chatflow's `maxFileBytes`)."""
    home: Path = tmp_path_factory.mktemp("home")
    running = start_server(
        home,
        f"sqlite+aiosqlite:///{home / 'tailwinds.db'}",
        threaded=True,
        TAILWINDS_OUTBOUND_NETWORKS="127.0.0.1/32",
        TAILWINDS_MAX_UPLOAD_BYTES="2000",
    )
    yield running
    running.stop()


def url_item(url: str, name: str, mime: str | None) -> dict[str, Any]:
    item = {"data": url, "type": "url", "name": name}
    if mime is not None:
        item["mime"] = mime
    return item


def test_an_image_url_reaches_the_model(
    open_server: RunningServer, mock_llm: MockOpenAI, files: str
) -> None:
    chatflow_id = flow(open_server, "chatOpenAI", mock_llm.base_url, "echo")
    for path, mime in (("/dot.png", "image/png"), ("/moved", None)):
        question = f"what is at {path}"
        answer = ask(open_server, chatflow_id, question, [url_item(files + path, "dot.png", mime)])
        assert answer.status_code == 200, answer.text
        assert mock_llm.find(question).body["messages"][-1]["content"] == [
            {"type": "text", "text": question},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        ]


def test_a_text_url_joins_the_question(
    open_server: RunningServer, mock_llm: MockOpenAI, files: str
) -> None:
    chatflow_id = flow(open_server, "chatOpenAI", mock_llm.base_url, "echo")
    upload = url_item(files + "/notes.txt", "notes.txt", "text/plain")
    answer = ask(open_server, chatflow_id, "when is the meeting (url)", [upload])
    assert answer.status_code == 200, answer.text
    sent = mock_llm.find("when is the meeting (url)").body["messages"][-1]["content"]
    assert sent == "when is the meeting (url)\n\n--- notes.txt ---\nthe meeting moved to Thursday"


def test_url_refusals_name_the_file(
    open_server: RunningServer, mock_llm: MockOpenAI, files: str
) -> None:
    limits = {"maxFileBytes": 1000, "allowedTypes": ["image/png", "text/plain"]}
    chatflow_id = flow(
        open_server, "chatOpenAI", mock_llm.base_url, "echo", chatbotConfig={"uploads": limits}
    )
    cases = [
        (url_item(files + "/big.png", "big.png", "image/png"), "uploads.0", "larger than 1000"),
        (url_item(files + "/fake.png", "fake.png", "image/png"), "uploads.0", "text/html"),
        (url_item(files + "/fake.png", "fake.png", None), "uploads.0", "text/html is not allowed"),
        (url_item(files + "/dot.png", "dot.png", "image/gif"), "uploads.0", "not allowed"),
        (url_item(files + "/gone.png", "gone.png", "image/png"), "uploads.0", "HTTP 404"),
        (url_item("ftp://127.0.0.1/x.png", "x.png", "image/png"), "uploads.0.data", "http(s)"),
        (
            url_item(files + "/dot.png", "dot.png", "image/png") | {"type": "audio"},
            "uploads.0.type",
            "expected type",
        ),
    ]
    for item, field, reason in cases:
        refused = ask(open_server, chatflow_id, "q", [item])
        assert refused.status_code == 400, refused.text
        error = refused.json()["error"]
        assert error.startswith(f"{field}: {item['name']}") and reason in error, error


def test_the_operators_upload_cap_bounds_a_url(
    open_server: RunningServer, mock_llm: MockOpenAI, files: str
) -> None:
    limits = {"maxFileBytes": 10_000_000}
    chatflow_id = flow(
        open_server, "chatOpenAI", mock_llm.base_url, "echo", chatbotConfig={"uploads": limits}
    )
    item = url_item(files + "/big.png", "big.png", "image/png")
    refused = ask(open_server, chatflow_id, "q", [item])
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "uploads.0: big.png: larger than 2000 bytes"


def test_loopback_is_refused_without_the_operators_setting(
    sqlite_server: RunningServer, mock_llm: MockOpenAI, files: str
) -> None:
    chatflow_id = flow(sqlite_server, "chatOpenAI", mock_llm.base_url, "echo")
    for url in (files + "/dot.png", files.replace("127.0.0.1", "localhost") + "/dot.png"):
        refused = ask(sqlite_server, chatflow_id, "q", [url_item(url, "dot.png", "image/png")])
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"].startswith("uploads.0.data: dot.png: "), refused.text
    # a cloud metadata address: never, whatever the setting
    metadata = url_item("http://169.254.169.254/latest/x.png", "meta.png", "image/png")
    refused = ask(sqlite_server, chatflow_id, "q", [metadata])
    assert refused.status_code == 400 and "meta.png" in refused.text, refused.text


def test_a_caller_over_its_limit_makes_the_server_fetch_nothing(
    open_server: RunningServer, mock_llm: MockOpenAI, files: str
) -> None:
    chatflow_id = flow(
        open_server,
        "chatOpenAI",
        mock_llm.base_url,
        "echo",
        rateLimit={"requests": 1, "windowS": 60},
    )
    upload = url_item(files + "/notes.txt?limited", "notes.txt", "text/plain")
    assert ask(open_server, chatflow_id, "first (limited)", [upload]).status_code == 200
    assert FETCHED.count("/notes.txt?limited") == 1
    refused = ask(open_server, chatflow_id, "second (limited)", [upload])
    assert refused.status_code == 429, refused.text
    # the limit is checked before the fetch: a refused caller costs the server no request
    assert FETCHED.count("/notes.txt?limited") == 1
