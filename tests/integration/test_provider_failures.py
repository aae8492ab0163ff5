"""A model server's failures, whatever their shape, reach the client as `error` then `end`
and leave the turn stored with status `error`: recorded-shape answers
(tests/fixtures/transcripts) replayed by a raw TCP server through the whole server."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.conftest import RunningServer
from tests.sse_frames import check_order, parse_frames, tokens_of
from tests.unit.providers.transcript_replay import TRANSCRIPTS


class _Replay(socketserver.BaseRequestHandler):
    """Answers each request with the transcript its `model` names, close-delimited."""

    def handle(self) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += self.request.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(body) < length:
            body += self.request.recv(65536)
        name = json.loads(body)["model"]
        self.request.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
            + (TRANSCRIPTS / name).read_bytes()
        )


@pytest.fixture(scope="module")
def replay_url() -> Iterator[str]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Replay)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


NODES = {"openai": "chatOpenAI", "anthropic": "chatAnthropic", "ollama": "chatOllama"}


@pytest.mark.parametrize(
    ("transcript", "text", "code"),
    [
        ("openai/error_field_first.txt", "", "provider_rejected"),
        ("openai/error_field_after_token.txt", "Hello", "provider_unavailable"),
        ("openai/error_object_code.txt", "", "provider_rejected"),
        ("openai/done_without_finish.txt", "cut", "provider_bad_response"),
        ("anthropic/error_overloaded.txt", "Hel", "provider_unavailable"),
        ("anthropic/no_message_stop.txt", "cut", "provider_bad_response"),
        ("ollama/error_midstream.txt", "Hel", "provider_unavailable"),
        ("ollama/no_done.txt", "cut", "provider_bad_response"),
    ],
)
def test_a_failed_answer_is_an_error_and_stored_failed(
    sqlite_server: RunningServer, replay_url: str, transcript: str, text: str, code: str
) -> None:
    kind = transcript.split("/")[0]
    base_url = replay_url + ("/v1" if kind == "openai" else "")
    node = {"id": "m", "type": NODES[kind], "inputs": {"model": transcript, "baseUrl": base_url}}
    chatflow_id = sqlite_server.create_chatflow({"nodes": [node]})["id"]
    chat_id = "chat-" + transcript.replace("/", "-")
    response = requests.post(
        f"{sqlite_server.url}/api/v1/predictions/{chatflow_id}",
        json={"question": "hi", "streaming": True, "chatId": chat_id},
        timeout=10,
    )
    frames = parse_frames(response.content)
    check_order(frames)
    names = [name for name, _ in frames]
    assert names[-2:] == ["error", "end"] and "metadata" not in names
    assert frames[-2][1]["code"] == code
    assert tokens_of(frames) == text
    stored: list[dict[str, Any]] = requests.get(
        f"{sqlite_server.url}/api/v1/chatmessage/{chatflow_id}",
        params={"chatId": chat_id},
        timeout=10,
    ).json()
    assert [m["status"] for m in stored if m["role"] == "apiMessage"] == ["error"]
