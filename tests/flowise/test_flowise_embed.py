"""Flowise's chat widget, unchanged: `flowise-embed`'s built `web.js`, served from
`node_modules` on a page of another origin (one the chatflow allows), in Chromium, talking
to Tailwinds as its own process and the mock model."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.browser.conftest import screenshot
from tests.conftest import RunningServer, free_port
from tests.flowise.conftest import NPM_CI_TIMEOUT_S
from tests.integration.test_agents import CALC, agent_flow
from tests.integration.test_retrieval import upsert
from tests.mock_openai import MockOpenAI

WAIT_S = 20

# the first test may wait for `npm ci` of tests/flowise on a cold cache
pytestmark = pytest.mark.timeout(NPM_CI_TIMEOUT_S + 120)


class Site:
    """A web site on its own origin whose pages embed the widget."""

    def __init__(self, web_js: Path) -> None:
        self.pages: dict[str, str] = {}
        web = web_js.read_bytes()
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/web.js":
                    body, kind = web, "text/javascript"
                elif self.path in pages:
                    body, kind = pages[self.path].encode(), "text/html; charset=utf-8"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.origin = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def embed(self, name: str, api: str, chatflow_id: str) -> str:
        """A page with the full-page widget for `chatflow_id`; its URL."""
        self.pages[f"/{name}"] = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>shop</title></head><body>
<flowise-fullchatbot></flowise-fullchatbot>
<script type="module">
  import Chatbot from "/web.js";
  Chatbot.initFull({{ chatflowid: {json.dumps(chatflow_id)}, apiHost: {json.dumps(api)} }});
</script></body></html>"""
        return f"{self.origin}/{name}"


@pytest.fixture(scope="module")
def site(flowise_modules: Path) -> Iterator[Site]:
    running = Site(flowise_modules / "flowise-embed" / "dist" / "web.js")
    yield running
    running.server.shutdown()


def model_flow(server: RunningServer, mock: MockOpenAI, site: Site, model: str) -> str:
    node = {"id": "m", "type": "chatOpenAI", "inputs": {"model": model, "baseUrl": mock.base_url}}
    return server.create_chatflow({"nodes": [node]}, allowedOrigins=[site.origin])["id"]


def ask(page: Any, question: str) -> None:
    box = page.get_by_placeholder("Type your question")
    box.fill(question)
    box.press("Enter")


def bubbles(page: Any) -> list[str]:
    return [b.inner_text() for b in page.locator('[data-testid="host-bubble"]').all()]


def wait_until(check: Any, what: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"waited {WAIT_S} s for {what}")


def test_the_answer_appears_token_by_token(
    page: Any, site: Site, sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    flow = model_flow(sqlite_server, mock_llm, site, "paced:0.15")
    page.goto(site.embed("stream", sqlite_server.url, flow))
    question = "tell me about the weather in the mountains this week"
    ask(page, question)
    # the first token is on screen while the mock is still writing the answer
    wait_until(lambda: any(b.startswith("You") for b in bubbles(page)), "the first token")
    record = mock_llm.find(question)
    assert not record.completed, "the answer only showed once the model had finished"
    whole = f"You said: {question}"
    wait_until(lambda: whole in bubbles(page), "the whole answer")
    screenshot(page, "flowise-embed-streaming")


def test_sources_shown_and_tools_received(
    page: Any, site: Site, sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    store = sqlite_server.create_document_store(mock_llm.base_url, name="embed-docs")
    docs = [("https://docs.example.com/returns", "returns are free within thirty days")]
    assert upsert(sqlite_server, store, docs).status_code in (200, 201, 202)
    flow = sqlite_server.retrieval_chatflow(mock_llm.base_url, store, allowedOrigins=[site.origin])
    page.goto(site.embed("sources", sqlite_server.url, flow))
    ask(page, "are returns free")
    wait_until(lambda: page.get_by_text("/returns").count() > 0, "the source bubble")


def test_starter_prompts_and_feedback_from_the_chatbot_config(
    page: Any, site: Site, sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    node = {
        "id": "m",
        "type": "chatOpenAI",
        "inputs": {"model": "echo", "baseUrl": mock_llm.base_url},
    }
    config = {
        "starterPrompts": ["What are your opening hours?", "Where are you?"],
        "chatFeedback": True,
        "followUpPrompts": True,
    }
    flow = sqlite_server.create_chatflow(
        {"nodes": [node]}, allowedOrigins=[site.origin], chatbotConfig=config
    )["id"]
    page.goto(site.embed("feedback", sqlite_server.url, flow))
    page.get_by_text("Where are you?").click()
    wait_until(lambda: "You said: Where are you?" in bubbles(page), "the answer")
    follow_up = page.get_by_text("Answer: You said: Where are you?")
    wait_until(lambda: follow_up.count() > 0, "the follow-up prompts")
    page.get_by_title("Thumbs Up").last.click()
    comment = page.get_by_placeholder("What do you think of the response?")
    comment.fill("quick and right")
    page.get_by_text("Submit Feedback").click()

    def stored() -> list[dict[str, Any]]:
        listed = requests.get(f"{sqlite_server.url}/api/v1/feedback/{flow}", timeout=5).json()
        return [f for f in listed if f["content"] == "quick and right"]

    (feedback,) = wait_until(stored, "the feedback stored with its comment")
    assert feedback["rating"] == "THUMBS_UP"
    history = requests.get(
        f"{sqlite_server.url}/api/v1/chatmessage/{flow}",
        params={"chatId": feedback["chatId"]},
        timeout=5,
    ).json()
    answer = next(m for m in history if m["id"] == feedback["messageId"])
    assert answer["content"] == "You said: Where are you?"
    assert answer["feedback"]["rating"] == "THUMBS_UP"
    screenshot(page, "flowise-embed-feedback")


def test_tools_reach_the_widget(
    page: Any, site: Site, sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    """flowise-embed 3.1.6 keeps a message's `usedTools` but draws none outside agent-flow
    steps: what it received is read back from the chat it saves in localStorage."""
    flow_data = agent_flow(mock_llm, [CALC])
    flow = sqlite_server.create_chatflow(flow_data, allowedOrigins=[site.origin])["id"]
    page.goto(site.embed("tools", sqlite_server.url, flow))
    ask(page, "call:" + json.dumps([["calculator", {"expression": "6 * 7"}]]))
    wait_until(lambda: any(b.startswith("Result: ") for b in bubbles(page)), "the answer")

    def saved_tools() -> list[Any]:
        saved = page.evaluate(
            "(id) => JSON.parse(localStorage.getItem(`${id}_EXTERNAL`) || '{}')", flow
        )
        return [t for m in saved.get("chatHistory", []) for t in m.get("usedTools") or []]

    (tool,) = wait_until(saved_tools, "the tools saved with the answer")
    assert tool["tool"] == "calculator" and tool["toolOutput"] == "42"
