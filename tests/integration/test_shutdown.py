"""SIGTERM while streams run: each ends with its whole answer or with `server_shutdown`
then `end`, and the process exits 0."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import requests

from tests.conftest import start_server
from tests.mock_openai import MockOpenAI
from tests.sse_frames import check_order, parse_frames, tokens_of


def test_sigterm_during_twenty_streams(tmp_path: Path, mock_llm: MockOpenAI) -> None:
    server = start_server(
        tmp_path, f"sqlite+aiosqlite:///{tmp_path / 't.db'}", TAILWINDS_SHUTDOWN_GRACE_S="1"
    )
    node = {
        "id": "m",
        "type": "chatOpenAI",
        "inputs": {"model": "paced:0.05", "baseUrl": mock_llm.base_url},
    }
    chatflow_id = server.create_chatflow({"nodes": [node]})["id"]
    results: dict[int, Any] = {}
    streaming = threading.Barrier(21)

    def stream(i: int) -> None:
        # half finish within the grace period, half do not
        tokens = [f"s{i}t{j} " for j in range(8 if i % 2 else 200)]
        with requests.post(
            f"{server.url}/api/v1/predictions/{chatflow_id}",
            json={"question": "tokens:" + json.dumps(tokens), "streaming": True},
            stream=True,
            timeout=30,
        ) as response:
            raw = bytearray()
            chunks = response.iter_content(chunk_size=None)
            raw += next(chunks)
            streaming.wait()
            for chunk in chunks:
                raw += chunk
        results[i] = (tokens, bytes(raw))

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    streaming.wait(10)
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(30)
    exit_code = server.process.wait(30)
    assert exit_code == 0, server.log()
    assert time.monotonic() - started < 10
    assert len(results) == 20
    for i, (tokens, raw) in results.items():
        frames = parse_frames(raw)
        check_order(frames)
        if i % 2:
            assert tokens_of(frames) == "".join(tokens)
        else:
            assert frames[-2] == (
                "error",
                {
                    "error": "The server is shutting down: the prediction was stopped. Ask again.",
                    "code": "server_shutdown",
                },
            )
            assert "".join(tokens).startswith(tokens_of(frames))
