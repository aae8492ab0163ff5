"""What a web page on another site can and cannot make this server do: Host names
(DNS rebinding), simple cross-site requests (CSRF), and CORS on every public route."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.conftest import RunningServer, start_server
from tests.mock_openai import MockOpenAI

APP = "https://app.example.com"
EVIL = "http://evil.example"
NODE = {
    "id": "m",
    "type": "chatOpenAI",
    "inputs": {"model": "m", "baseUrl": "http://127.0.0.1:9/v1"},
}
FORM = (
    '--f\r\nContent-Disposition: form-data; name="files"; filename="a.md"\r\n\r\n'
    "planted\r\n--f--\r\n"
)


@pytest.fixture(scope="module")
def store_and_flow(sqlite_server: RunningServer, mock_llm: MockOpenAI) -> dict[str, str]:
    store_id = sqlite_server.create_document_store(mock_llm.base_url)
    chatflow_id = sqlite_server.retrieval_chatflow(
        mock_llm.base_url, store_id, allowedOrigins=[APP]
    )
    return {"store": store_id, "chatflow": chatflow_id}


def call(server: RunningServer, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, f"{server.url}{path}", timeout=10, **kwargs)


# ---- Host names


@pytest.mark.parametrize("host", ["evil.example", "evil.example:3000", "localhost.evil.example"])
@pytest.mark.parametrize("path", ["/api/v1/credentials", "/api/v1/health", "/", "/docs"])
def test_without_a_token_foreign_host_names_are_refused(
    sqlite_server: RunningServer, host: str, path: str
) -> None:
    response = call(sqlite_server, "GET", path, headers={"Host": host})
    assert response.status_code == 400
    assert response.json()["code"] == "host_not_allowed"


@pytest.mark.parametrize(
    "host", ["localhost", "localhost:1", "127.0.0.1:9", "[::1]:3000", "10.1.2.3"]
)
def test_without_a_token_local_names_and_addresses_are_served(
    sqlite_server: RunningServer, host: str
) -> None:
    assert (
        call(sqlite_server, "GET", "/api/v1/credentials", headers={"Host": host}).status_code == 200
    )


def test_public_routes_serve_any_host_name_unless_a_browser_sent_the_request(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    flow = sqlite_server.model_chatflow(mock_llm.base_url)
    path = f"/api/v1/predictions/{flow}"
    body = {"question": "by another name"}
    # a script naming the server as it likes (a tunnel's name, `Host: x`)
    plain = call(sqlite_server, "POST", path, json=body, headers={"Host": "x"})
    assert plain.status_code == 200, plain.text
    # a browser marks its requests: a rebinding page is refused on public routes too
    for marks in ({"Origin": "http://x"}, {"Sec-Fetch-Site": "same-origin"}):
        refused = call(sqlite_server, "POST", path, json=body, headers={"Host": "x", **marks})
        assert refused.status_code == 400
        assert refused.json()["code"] == "host_not_allowed"
    # management stays closed to other names, browser or not; so do public GETs (a
    # same-origin GET from an http page carries no Origin): the resume route
    assert call(sqlite_server, "GET", "/api/v1/chatflows", headers={"Host": "x"}).status_code == 400
    resume = f"/api/v1/predictions/{flow}/stream/{plain.json()['messageId']}"
    assert call(sqlite_server, "GET", resume, headers={"Host": "x"}).status_code == 400


def test_a_rebinding_page_cannot_export_credentials(sqlite_server: RunningServer) -> None:
    evil = {"Host": "evil.example:3000", "Origin": "http://evil.example:3000"}
    response = call(
        sqlite_server, "POST", "/api/v1/export", json={"passphrase": "attacker"}, headers=evil
    )
    assert response.status_code == 400 and "secrets" not in response.text


@pytest.fixture(scope="module")
def listed_hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("hosts")
    running = start_server(
        home,
        f"sqlite+aiosqlite:///{home / 'tailwinds.db'}",
        TAILWINDS_ALLOWED_HOSTS="tw.example.com,*.corp.example",
        TAILWINDS_ADMIN_TOKEN="admin-" + "t" * 30,
    )
    yield running
    running.stop()


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("tw.example.com", 200),
        ("a.corp.example:8443", 200),
        ("localhost:3000", 200),
        ("corp.example", 400),
        ("evil.example", 400),
    ],
)
def test_allowed_hosts_apply_with_a_token_too(
    listed_hosts: RunningServer, host: str, status: int
) -> None:
    assert call(listed_hosts, "GET", "/api/v1/health", headers={"Host": host}).status_code == status


# ---- simple cross-site requests


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=f",
        None,
    ],
)
def test_json_routes_refuse_other_bodies_with_415(
    sqlite_server: RunningServer, store_and_flow: dict[str, str], content_type: str | None
) -> None:
    body = '{"name":"x","flowData":{"nodes":[],"edges":[]}}'
    headers = {"Content-Type": content_type} if content_type else {}
    for path in (
        "/api/v1/chatflows",
        f"/api/v1/predictions/{store_and_flow['chatflow']}",
        f"/api/v1/prediction/{store_and_flow['chatflow']}",
        f"/api/v1/predictions/{store_and_flow['chatflow']}/abort",
        f"/api/v1/document-stores/{store_and_flow['store']}/query",
        "/api/v1/import",
    ):
        # requests sets no type for a str body; a Blob in `fetch` does the same
        response = call(sqlite_server, "POST", path, data=body, headers=headers)
        assert response.status_code == 415, (path, response.text)
        assert response.json()["code"] == "unsupported_media_type"


@pytest.mark.parametrize("route", ["store", "flowise"])
def test_uploads_refuse_text_plain_but_take_files(
    sqlite_server: RunningServer, store_and_flow: dict[str, str], route: str
) -> None:
    path = (
        f"/api/v1/document-stores/{store_and_flow['store']}/upsert"
        if route == "store"
        else f"/api/v1/vector/upsert/{store_and_flow['chatflow']}"
    )
    plain = call(
        sqlite_server,
        "POST",
        path,
        data='{"documents":[{"pageContent":"x"}]}',
        headers={"Content-Type": "text/plain"},
    )
    assert plain.status_code == 415
    files = call(sqlite_server, "POST", path, files={"files": ("a.md", b"# fine\n\nkept")})
    assert files.status_code == 200, files.text


def test_management_refuses_a_foreign_origin(
    sqlite_server: RunningServer, store_and_flow: dict[str, str]
) -> None:
    store = store_and_flow["store"]
    for method, path, kwargs in (
        ("POST", "/api/v1/chatflows", {"json": {"name": "x", "flowData": {"nodes": []}}}),
        (
            "POST",
            f"/api/v1/document-stores/{store}/upsert",
            {"data": FORM, "headers": {"Content-Type": "multipart/form-data; boundary=f"}},
        ),
        ("DELETE", f"/api/v1/document-stores/{store}", {}),
        ("POST", "/api/v1/export", {"json": {}}),
    ):
        headers = {**kwargs.pop("headers", {}), "Origin": EVIL}
        response = call(sqlite_server, method, path, headers=headers, **kwargs)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["code"] == "cross_site"
    assert call(sqlite_server, "GET", f"/api/v1/document-stores/{store}").status_code == 200


def test_management_takes_its_own_origin(sqlite_server: RunningServer) -> None:
    own = sqlite_server.url  # http://127.0.0.1:<port>, as the web app's fetches send it
    response = call(
        sqlite_server,
        "POST",
        "/api/v1/chatflows",
        json={"name": "same-origin", "flowData": {"nodes": [NODE]}},
        headers={"Origin": own},
    )
    assert response.status_code == 201, response.text


def test_a_public_upsert_from_a_foreign_origin_is_refused(
    sqlite_server: RunningServer, store_and_flow: dict[str, str]
) -> None:
    path = f"/api/v1/vector/upsert/{store_and_flow['chatflow']}"
    form = {"data": FORM, "headers": {"Content-Type": "multipart/form-data; boundary=f"}}
    refused = call(
        sqlite_server, "POST", path, data=form["data"], headers={**form["headers"], "Origin": EVIL}
    )
    assert refused.status_code == 403
    allowed = call(
        sqlite_server, "POST", path, data=form["data"], headers={**form["headers"], "Origin": APP}
    )
    assert allowed.status_code == 200, allowed.text
    assert allowed.headers["access-control-allow-origin"] == APP


# ---- CORS on the resume route


def open_to_app(server: RunningServer, mock_llm: MockOpenAI) -> str:
    node = {
        "id": "m",
        "type": "chatOpenAI",
        "inputs": {"model": "echo", "baseUrl": mock_llm.base_url},
    }
    return server.create_chatflow({"nodes": [node]}, allowedOrigins=[APP])["id"]


def test_resume_answers_cors_and_allows_last_event_id(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = open_to_app(sqlite_server, mock_llm)
    done = call(
        sqlite_server,
        "POST",
        f"/api/v1/predictions/{chatflow_id}",
        json={"question": "hi", "streaming": True, "resumeGraceSeconds": 30},
        headers={"Origin": APP},
    )
    message_id = json.loads(done.text.split("data: ", 2)[1].split("\n")[0])["messageId"]
    path = f"/api/v1/predictions/{chatflow_id}/stream/{message_id}"
    preflight = call(
        sqlite_server,
        "OPTIONS",
        path,
        headers={
            "Origin": APP,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "last-event-id",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == APP
    assert "last-event-id" in preflight.headers["access-control-allow-headers"].lower()
    assert "GET" in preflight.headers["access-control-allow-methods"]
    whole = call(sqlite_server, "GET", path, headers={"Origin": APP})
    assert whole.status_code == 200 and "event: end" in whole.text
    assert whole.headers["access-control-allow-origin"] == APP
    foreign = call(sqlite_server, "GET", path, headers={"Origin": EVIL})
    assert "access-control-allow-origin" not in foreign.headers


def test_resuming_an_ended_stream_answers_204(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = open_to_app(sqlite_server, mock_llm)
    done = call(
        sqlite_server,
        "POST",
        f"/api/v1/predictions/{chatflow_id}",
        json={"question": "hi", "streaming": True, "resumeGraceSeconds": 30},
    )
    ids = [int(line[4:]) for line in done.text.split("\n") if line.startswith("id: ")]
    message_id = json.loads(done.text.split("data: ", 2)[1].split("\n")[0])["messageId"]
    path = f"/api/v1/predictions/{chatflow_id}/stream/{message_id}"
    after_end = call(
        sqlite_server, "GET", path, headers={"Last-Event-ID": str(ids[-1]), "Origin": APP}
    )
    assert after_end.status_code == 204 and after_end.content == b""
    assert after_end.headers["access-control-allow-origin"] == APP
    before_end = call(sqlite_server, "GET", path, headers={"Last-Event-ID": str(ids[-2])})
    assert before_end.status_code == 200 and before_end.text.rstrip().endswith(
        "event: end\ndata: {}"
    )
