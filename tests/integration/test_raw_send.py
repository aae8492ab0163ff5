"""The SSE response's raw send (past the middlewares, measured as three coroutine calls
less a token) is taken only with the middleware stack it was measured with: a middleware
added to the app (here a pass-through that records body chunks, as gzip or tracing would
read them) sees every chunk of every stream."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tailwinds.config import Settings
from tailwinds.server.app import TailwindsAPI, create_app, raw_send_safe
from tests.conftest import free_port
from tests.mock_openai import MockOpenAI


class BodyRecorder:
    """A pure ASGI middleware that passes everything on, keeping the prediction
    responses' body chunks."""

    def __init__(self, app: ASGIApp, chunks: list[bytes]) -> None:
        self.app = app
        self.chunks = chunks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/v1/predictions/"):
            await self.app(scope, receive, send)
            return

        async def recording(message: Message) -> None:
            if message["type"] == "http.response.body":
                self.chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, recording)


def _settings(home: Path) -> Settings:
    return Settings.from_env({"TAILWINDS_HOME": str(home)})


@pytest.fixture
def recorded_app(tmp_path: Path) -> Iterator[tuple[str, TailwindsAPI, list[bytes]]]:
    chunks: list[bytes] = []
    app = create_app(_settings(tmp_path))
    assert isinstance(app, TailwindsAPI)
    app.add_middleware(BodyRecorder, chunks=chunks)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the app did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", app, chunks
    finally:
        server.should_exit = True
        thread.join(30)


def test_the_measured_stack_takes_the_raw_send(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path))
    assert raw_send_safe(app)
    app.add_middleware(BodyRecorder, chunks=[])
    assert not raw_send_safe(app)
    measured = create_app(_settings(tmp_path))
    assert isinstance(measured, TailwindsAPI)
    measured.build_middleware_stack()  # what Starlette does on the app's first call
    assert measured.raw_send is True


def test_an_added_middleware_sees_every_stream_chunk(
    recorded_app: tuple[str, TailwindsAPI, list[bytes]], mock_llm: MockOpenAI
) -> None:
    url, app, chunks = recorded_app
    assert app.raw_send is False  # decided at start, from the stack
    node = {
        "id": "m",
        "type": "chatOpenAI",
        "inputs": {"model": "echo", "baseUrl": mock_llm.base_url},
    }
    created = requests.post(
        f"{url}/api/v1/chatflows",
        json={"name": "recorded", "flowData": {"nodes": [node], "edges": []}},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = {"question": 'tokens:["a","b","c","d","e"]', "streaming": True}
    with requests.post(
        f"{url}/api/v1/predictions/{created.json()['id']}", json=body, stream=True, timeout=30
    ) as response:
        assert response.status_code == 200
        received = b"".join(response.iter_content(chunk_size=None))
    assert received.count(b"event: token") == 5
    # every chunk the client got went through the middleware, in order
    assert b"".join(chunks) == received
    assert sum(1 for c in chunks if b"event: token" in c) == 5
