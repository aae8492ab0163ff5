"""A streaming turn in flight on a thread, for tests of concurrent turns in one chat: it says
when its first token has come, so a test acts while the turn runs (no sleeps)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import requests

from tests.sse_frames import parse_frames


class TurnInFlight(threading.Thread):
    def __init__(self, url: str, chatflow_id: str, question: str, chat_id: str) -> None:
        super().__init__(daemon=True)
        self.url = f"{url}/api/v1/predictions/{chatflow_id}"
        self.body = {"question": question, "chatId": chat_id, "streaming": True}
        self.first_token = threading.Event()  # also set when the turn ends without one
        self.status: int | None = None
        self.raw = b""

    def run(self) -> None:
        try:
            with requests.post(self.url, json=self.body, stream=True, timeout=60) as response:
                self.status = response.status_code
                for chunk in response.iter_content(None):
                    self.raw += chunk
                    if b"event: token" in self.raw:
                        self.first_token.set()
        finally:
            self.first_token.set()

    def started(self) -> TurnInFlight:
        """Start, and return once the first token has come."""
        self.start()
        assert self.first_token.wait(20), "the turn gave no token"
        assert self.status == 200, self.raw
        return self

    def wait_tokens(self, count: int, timeout_s: float = 20) -> None:
        """Return once `count` tokens have come."""
        deadline = time.monotonic() + timeout_s
        while self.raw.count(b"event: token") < count:
            assert self.is_alive() and time.monotonic() < deadline, "the tokens did not come"
            time.sleep(0.02)

    def frames(self) -> list[tuple[str, Any]]:
        self.join(60)
        assert not self.is_alive(), "the turn did not end"
        return parse_frames(self.raw)


def slow_question(name: str, tokens: int = 20) -> str:
    """A question the mock answers with `tokens` tokens, at the chatflow's model's pace."""
    return "tokens:" + json.dumps([f"{name}-{i} " for i in range(tokens)])


def slow_answer(name: str, tokens: int = 20) -> str:
    return "".join(f"{name}-{i} " for i in range(tokens))


def ask(url: str, chatflow_id: str, question: str, chat_id: str, **body: Any) -> requests.Response:
    return requests.post(
        f"{url}/api/v1/predictions/{chatflow_id}",
        json={"question": question, "chatId": chat_id, **body},
        timeout=60,
    )


def stored(url: str, chatflow_id: str, chat_id: str) -> list[tuple[str, str, str]]:
    """(role, content, status) of a chat's stored messages, in the order the API gives."""
    messages = requests.get(
        f"{url}/api/v1/chatmessage/{chatflow_id}", params={"chatId": chat_id}, timeout=10
    ).json()
    return [(m["role"], m["content"], m["status"]) for m in messages]


def stored_turn(
    url: str, chatflow_id: str, chat_id: str, timeout: float = 30
) -> list[tuple[str, str, str]]:
    """`stored` once the chat holds a question and its answer (a run stopped from
    elsewhere is stored as it ends, after its stream)."""
    deadline = time.monotonic() + timeout
    while len(turn := stored(url, chatflow_id, chat_id)) < 2:
        assert time.monotonic() < deadline, f"chat {chat_id}: no answer stored"
        time.sleep(0.1)
    return turn


def one_running_one_waiting(
    url: str, chatflow_id: str, redis_url: str, jobs: str, tokens: tuple[int, int]
) -> tuple[TurnInFlight, TurnInFlight]:
    """On a queue-mode worker with one slot: a turn running (`slow_question` of
    `tokens[0]`, its chat id its name), and a second (`tokens[1]`) its worker has read and
    holds, waiting for the slot: both entries pending in the `jobs` stream."""
    import redis

    from tailwinds.transport.keys import WORKER_GROUP
    from tests.integration.test_client_gone import wait_for

    first, second = (f"{word}-{uuid.uuid4().hex[:8]}" for word in ("first", "second"))
    running = TurnInFlight(url, chatflow_id, slow_question(first, tokens[0]), first).started()
    waiting = TurnInFlight(url, chatflow_id, slow_question(second, tokens[1]), second)
    waiting.start()
    with redis.Redis.from_url(redis_url) as client:
        wait_for("both read", lambda: client.xpending(jobs, WORKER_GROUP)["pending"] == 2)
    return running, waiting
