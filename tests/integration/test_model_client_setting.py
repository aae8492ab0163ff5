"""The settings of the models' client end to end: TAILWINDS_MODEL_CLIENT picks ours or
aiohttp, TAILWINDS_OUTBOUND_PROXY sends the model's requests through a real proxy
(proxy.py, with Basic credentials), and the credentials never reach the log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from tests.conftest import start_server
from tests.forward_proxy import forward_proxy
from tests.mock_openai import MockOpenAI
from tests.sse_frames import check_order, parse_frames, tokens_of


@pytest.mark.parametrize("client", ["wire", "aiohttp"])
def test_a_streamed_answer_through_the_proxy(
    client: str, mock_llm: MockOpenAI, tmp_path: Path
) -> None:
    with forward_proxy(tmp_path, "tw:hunter2-proxy") as port:
        home = tmp_path / "home"
        server = start_server(
            home,
            f"sqlite+aiosqlite:///{home / 'tailwinds.db'}",
            TAILWINDS_MODEL_CLIENT=client,
            TAILWINDS_OUTBOUND_PROXY=f"http://tw:hunter2-proxy@127.0.0.1:{port}",
        )
        try:
            chatflow_id = server.model_chatflow(mock_llm.base_url)
            tokens = ["Through", " the", " proxy"]
            for _ in range(2):  # the second on a kept connection
                response = requests.post(
                    f"{server.url}/api/v1/predictions/{chatflow_id}",
                    json={"question": "tokens:" + json.dumps(tokens), "streaming": True},
                    timeout=30,
                )
                frames = parse_frames(response.content)
                check_order(frames)
                assert tokens_of(frames) == "Through the proxy"
        finally:
            server.stop()
        assert "hunter2" not in server.log()

    # the proxy gone: the model is unreachable, said so, the credentials still unshown
    server = start_server(
        tmp_path / "home2",
        f"sqlite+aiosqlite:///{tmp_path / 'home2' / 'tailwinds.db'}",
        TAILWINDS_MODEL_CLIENT=client,
        TAILWINDS_OUTBOUND_PROXY=f"http://tw:hunter2-proxy@127.0.0.1:{port}",
    )
    try:
        chatflow_id = server.model_chatflow(mock_llm.base_url)
        response = requests.post(
            f"{server.url}/api/v1/predictions/{chatflow_id}",
            json={"question": "hi", "streaming": True},
            timeout=30,
        )
        frames = parse_frames(response.content)
        check_order(frames)
        errors = [data for name, data in frames if name == "error"]
        assert errors and "hunter2" not in json.dumps(errors)
    finally:
        server.stop()
    assert "hunter2" not in server.log()


def test_an_unused_socks_all_proxy_beside_http_and_https_proxies(
    mock_llm: MockOpenAI, tmp_path: Path
) -> None:
    """Desktop VPN tools export ALL_PROXY=socks5h://… beside HTTP(S)_PROXY: ALL_PROXY is
    never used then (each scheme has its own), so it must not stop the server at start."""
    with forward_proxy(tmp_path) as port:
        home = tmp_path / "home"
        server = start_server(
            home,
            f"sqlite+aiosqlite:///{home / 'tailwinds.db'}",
            TAILWINDS_OUTBOUND_PROXY="",
            HTTP_PROXY=f"http://127.0.0.1:{port}",
            HTTPS_PROXY=f"http://127.0.0.1:{port}",
            ALL_PROXY="socks5h://127.0.0.1:1080",
        )
        try:
            chatflow_id = server.model_chatflow(mock_llm.base_url)
            response = requests.post(
                f"{server.url}/api/v1/predictions/{chatflow_id}",
                json={"question": "tokens:" + json.dumps(["Via", " proxy"]), "streaming": True},
                timeout=30,
            )
            frames = parse_frames(response.content)
            check_order(frames)
            assert tokens_of(frames) == "Via proxy"
        finally:
            server.stop()
