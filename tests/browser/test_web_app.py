"""The web app in a real browser against Tailwinds as its own process: tokens on screen as
they stream, Stop, sources and tools, model output kept as text, the editor, the "Use via
API" snippets run as pasted, the admin pages and sign-in."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.browser.conftest import screenshot
from tests.conftest import RunningServer, start_server
from tests.integration.test_prediction_stream import wait_for_answer
from tests.mock_openai import MockOpenAI

SEED = Path(__file__).parents[1] / "fixtures" / "api-streaming.seed.md"


def answers(page: Any) -> Any:
    return page.locator('.message[data-role="api"] .bubble')


def ask(page: Any, question: str) -> None:
    page.fill('textarea[name="question"]', question)
    page.keyboard.press("Enter")


def test_tokens_appear_as_they_stream_and_stop_aborts(
    page: Any, sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = sqlite_server.model_chatflow(mock_llm.base_url, model="paced:0.05")
    page.goto(f"{sqlite_server.url}/#/chat/{chatflow_id}")
    tokens = [f"w{i} " for i in range(60)]
    question = "tokens:" + json.dumps(tokens)
    ask(page, question)
    page.wait_for_function(
        "() => document.querySelector('.message[data-role=api] .bubble')?.innerText.includes('w0')"
    )
    record = mock_llm.find(question)
    assert not record.completed, "the first token was on screen only after the mock's last"
    page.get_by_role("button", name="Stop").click()
    page.wait_for_selector(".stats:has-text('aborted')")
    shown = answers(page).last.inner_text()
    assert 0 < len(shown) < len("".join(tokens))
    chat_id = page.evaluate(f"localStorage.getItem('tailwinds-chat-{chatflow_id}')")
    stored = wait_for_answer(sqlite_server, chatflow_id, chat_id)
    assert stored["status"] == "aborted"
    assert not record.completed

    # a reload shows the conversation again, from the server
    page.reload()
    page.wait_for_selector('.message[data-role="user"]')
    assert question in page.locator('.message[data-role="user"]').first.inner_text()
    page.get_by_role("button", name="New chat").click()
    assert page.locator(".message").count() == 0


def test_sources_tools_usage_and_latency_are_shown(
    page: Any, sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    store_id = sqlite_server.create_document_store(mock_llm.base_url, "animals")
    requests.post(
        f"{sqlite_server.url}/api/v1/document-stores/{store_id}/upsert",
        json={
            "documents": [
                {
                    "pageContent": "Penguins live in Antarctica.",
                    "metadata": {"source": "penguins.md"},
                }
            ]
        },
        timeout=10,
    ).raise_for_status()
    flow = {
        "nodes": [
            {
                "id": "chat_0",
                "type": "chatOpenAI",
                "inputs": {"model": "agent", "baseUrl": mock_llm.base_url},
            },
            {"id": "agent_0", "type": "toolAgent", "inputs": {}},
            {"id": "calc", "type": "calculator", "inputs": {}},
            {
                "id": "docs",
                "type": "retrieverTool",
                "inputs": {"documentStoreId": store_id, "name": "animal_facts"},
            },
        ],
        "edges": [
            {"source": "chat_0", "target": "agent_0", "targetInput": "model"},
            {"source": "calc", "target": "agent_0", "targetInput": "tools"},
            {"source": "docs", "target": "agent_0", "targetInput": "tools"},
        ],
    }
    chatflow_id = sqlite_server.create_chatflow(flow, name="Animal agent")["id"]
    page.goto(f"{sqlite_server.url}/#/chat/{chatflow_id}")
    ask(
        page,
        "call:"
        + json.dumps(
            [["animal_facts", {"query": "penguins"}], ["calculator", {"expression": "6*7"}]]
        ),
    )
    page.wait_for_selector(".stats:has-text('first token')")
    sources = page.locator('[aria-label="Sources"] details')
    assert sources.count() == 1
    assert "penguins.md" in sources.first.inner_text()
    sources.first.locator("summary").click()
    assert "Penguins live in Antarctica." in sources.first.inner_text()
    tools = page.locator('[aria-label="Tools"] details')
    assert {
        tools.nth(i).locator("summary").inner_text().split(" (")[0] for i in range(tools.count())
    } == {
        "tool animal_facts",
        "tool calculator",
    }
    stats = page.locator(".stats").last.inner_text()
    assert re.search(r"first token \d+ ms", stats) and "tokens/s" in stats
    assert "prompt" in stats and "completion tokens" in stats
    screenshot(page, "playground")


def test_model_output_is_shown_as_text_not_html(
    page: Any, sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = sqlite_server.model_chatflow(mock_llm.base_url)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{sqlite_server.url}/#/chat/{chatflow_id}")
    payload = "<img src=x onerror=alert(1)>"
    ask(page, "tokens:" + json.dumps(["Look: ", payload, " and `code`"]))
    page.wait_for_selector(".stats:has-text('first token')")
    bubble = answers(page).last
    assert payload in bubble.inner_text()
    assert bubble.locator("img").count() == 0
    assert page.locator("img").count() == 0
    assert bubble.locator("code").inner_text() == "code"  # markdown is rendered
    page.wait_for_timeout(300)
    assert not dialogs


def test_an_error_is_shown_plainly(
    page: Any, sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = sqlite_server.model_chatflow(mock_llm.base_url, model="status:401")
    page.goto(f"{sqlite_server.url}/#/chat/{chatflow_id}")
    ask(page, "hello")
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "Incorrect API key" in alert.inner_text()
    assert "sk-" not in alert.inner_text()


def settled_box(page: Any, selector: str) -> dict[str, float]:
    """Where an element is once it stops moving: React Flow may still be fitting the view
    to nodes just added, and a drag aimed at where a handle was misses it."""
    box = page.locator(selector).bounding_box()
    for _ in range(50):
        page.wait_for_timeout(50)
        again = page.locator(selector).bounding_box()
        if again == box:
            return box  # type: ignore[no-any-return]
        box = again
    raise AssertionError(f"{selector} kept moving")


def drag(page: Any, source: str, target: str) -> None:
    a = settled_box(page, source)
    b = settled_box(page, target)
    page.mouse.move(a["x"] + a["width"] / 2, a["y"] + a["height"] / 2)
    page.mouse.down()
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2, steps=8)
    page.mouse.up()


def test_build_a_chatflow_in_the_editor(
    page: Any, sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    page.goto(f"{sqlite_server.url}/#/edit/new?template=local")
    page.wait_for_selector('.react-flow__node[data-id="chat_0"]')
    page.click('.react-flow__node[data-id="chat_0"]')
    page.get_by_role("button", name="Remove node").click()
    assert page.locator(".react-flow__node").count() == 0

    page.click('[data-node-type="chatOpenAI"]')
    page.fill('[aria-label="Inputs of chatOpenAI_0"] input[name="baseUrl"]', mock_llm.base_url)
    page.click('[data-node-type="bufferWindowMemory"]')
    page.click('[data-node-type="conversationChain"]')
    # new nodes land apart from each other; wire model and memory into the chain
    drag(
        page,
        '.react-flow__handle[data-nodeid="chatOpenAI_0"][data-handleid="out"]',
        '.react-flow__handle[data-nodeid="conversationChain_0"][data-handleid="model"]',
    )
    drag(
        page,
        '.react-flow__handle[data-nodeid="bufferWindowMemory_0"][data-handleid="out"]',
        '.react-flow__handle[data-nodeid="conversationChain_0"][data-handleid="memory"]',
    )
    assert page.locator(".react-flow__edge").count() == 2
    page.click(".react-flow__pane", position={"x": 5, "y": 5})
    settings = page.locator('[aria-label="Chatflow settings"]')
    settings.locator('input[name="name"]').fill("Built in the browser")
    settings.locator('input[name="allowedOrigins"]').fill("https://app.example.com")
    settings.locator('input[name="requests"]').fill("30")
    settings.locator('input[name="resumeGraceSeconds"]').fill("20")

    # the model is required and missing: the server says so, on that node
    page.get_by_role("button", name="Save", exact=True).click()
    banner = page.locator(".banner.error")
    banner.wait_for()
    assert "chatOpenAI_0" in banner.inner_text() and "model" in banner.inner_text()
    assert page.locator('.react-flow__node[data-id="chatOpenAI_0"] .tw-node.invalid').count() == 1
    screenshot(page, "editor")

    page.click('.react-flow__node[data-id="chatOpenAI_0"] .tw-node-head')
    page.fill('[aria-label="Inputs of chatOpenAI_0"] input[name="model"]', "echo")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_selector(".banner.ok")
    assert page.locator(".tw-node.invalid").count() == 0
    chatflow_id = re.search(r"#/edit/([0-9a-f-]+)", page.url).group(1)
    saved = requests.get(f"{sqlite_server.url}/api/v1/chatflows/{chatflow_id}", timeout=5).json()
    assert saved["name"] == "Built in the browser"
    assert saved["allowedOrigins"] == ["https://app.example.com"]
    assert saved["rateLimit"] == {"requests": 30, "windowS": 60}
    assert saved["resumeGraceSeconds"] == 20
    assert {(e["source"], e["targetInput"]) for e in saved["flowData"]["edges"]} == {
        ("chatOpenAI_0", "model"),
        ("bufferWindowMemory_0", "memory"),
    }

    page.get_by_role("button", name="Save and chat").click()
    page.wait_for_url(re.compile(r"#/chat/"))
    ask(page, "built by hand")
    page.wait_for_selector(".stats:has-text('first token')")
    assert answers(page).last.inner_text() == "You said: built by hand"


def _seed_block(language: str) -> str:
    text = SEED.read_text()
    return re.search(rf"```{language}\n(.*?)```", text, re.S).group(1)


def test_use_via_api_snippets_run_as_pasted(
    page: Any, sqlite_server: RunningServer, mock_llm: MockOpenAI, tmp_path: Path
) -> None:
    chatflow_id = sqlite_server.model_chatflow(mock_llm.base_url)
    page.goto(f"{sqlite_server.url}/#/chat/{chatflow_id}")
    page.get_by_role("button", name="Use via API").click()
    dialog = page.get_by_role("dialog", name="Use via API")
    screenshot(page, "use-via-api")
    copied: dict[str, str] = {}
    for tab, language in (("Python", "python"), ("JavaScript", "javascript"), ("curl", "bash")):
        dialog.get_by_role("tab", name=tab).click()
        dialog.get_by_role("button", name="Copy").click()
        dialog.get_by_role("button", name="Copied").wait_for()
        code = page.evaluate("navigator.clipboard.readText()")
        # exactly the published snippet, but for this server's URL and the chatflow id
        published = _seed_block(language)
        assert (
            code.replace(sqlite_server.url, "https://your-tailwinds-instance.com").replace(
                chatflow_id, "your-chatflow-id" if language != "bash" else "{chatflow-id}"
            )
            == published
        )
        copied[language] = code

    script = tmp_path / "snippet.py"
    script.write_text(copied["python"])
    python = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=30
    )
    assert python.returncode == 0, python.stderr
    assert "You said: Hello world!" in python.stdout and "Stream ended" in python.stdout

    script = tmp_path / "snippet.mjs"
    script.write_text(copied["javascript"])
    node = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=30)
    assert node.returncode == 0, node.stderr
    assert "You said: Hello world!" in node.stdout

    curl = subprocess.run(
        ["bash", "-c", copied["bash"]], capture_output=True, text=True, timeout=30
    )
    assert "event: end" in curl.stdout


@pytest.fixture(scope="module")
def locked_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("locked")
    server = start_server(
        home, f"sqlite+aiosqlite:///{home / 'tailwinds.db'}", TAILWINDS_ADMIN_TOKEN="let-me-in"
    )
    yield server
    server.stop()


def test_sign_in_and_the_admin_pages(
    page: Any, locked_server: RunningServer, mock_llm: MockOpenAI, tmp_path: Path
) -> None:
    url = locked_server.url
    assert requests.get(f"{url}/api/v1/chatflows", timeout=5).status_code == 401
    page.goto(f"{url}/#/")
    page.get_by_role("form", name="Sign in").wait_for()
    page.fill('input[name="token"]', "wrong")
    page.keyboard.press("Enter")
    page.get_by_role("form", name="Sign in").wait_for()  # asked again
    page.fill('input[name="token"]', "let-me-in")
    page.keyboard.press("Enter")
    page.get_by_text("No chatflow yet").or_(page.locator("table.list")).first.wait_for()
    screenshot(page, "chatflows")

    # API keys: the key is shown once
    page.goto(f"{url}/#/keys")
    page.fill('input[name="name"]', "front end")
    page.get_by_role("button", name="Create key").click()
    key = page.get_by_test_id("new-key").inner_text()
    assert len(key) > 20
    headers = {"Authorization": "Bearer let-me-in"}
    listed = requests.get(f"{url}/api/v1/apikeys", headers=headers, timeout=5).json()
    assert key not in json.dumps(listed)
    page.reload()
    page.get_by_role("cell", name="front end").wait_for()
    assert key not in page.content()

    # credentials: never shown after saving
    page.goto(f"{url}/#/credentials")
    page.fill('input[name="name"]', "openai prod")
    page.fill('input[name="apiKey"]', "sk-browser-secret-0123456789")
    page.get_by_role("button", name="Save credential").click()
    page.get_by_role("cell", name="openai prod").wait_for()
    assert "sk-browser-secret" not in page.content()
    page.reload()
    page.get_by_role("cell", name="openai prod").wait_for()
    assert "sk-browser-secret" not in page.content()

    # document stores: create, upload a file with progress, delete
    page.goto(f"{url}/#/documents")
    page.fill('input[name="name"]', "handbook")
    page.fill('input[name="model"]', "bow")
    page.fill('input[name="baseUrl"]', mock_llm.base_url)
    page.get_by_role("button", name="Create store").click()
    row = page.locator("tr[data-store]", has_text="handbook")
    row.wait_for()
    doc = tmp_path / "handbook.md"
    doc.write_text("# Holidays\n\nEveryone gets thirty days.\n\n# Laptops\n\nEveryone gets one.\n")
    row.locator('input[type="file"]').set_input_files(str(doc))
    row.get_by_text(re.compile(r"\d+ chunks from 1 file")).wait_for()
    store_id = row.get_attribute("data-store")
    chunks = requests.get(
        f"{url}/api/v1/document-stores/{store_id}/chunks", headers=headers, timeout=5
    )
    assert any("thirty days" in c["pageContent"] for c in chunks.json())
    screenshot(page, "document-stores")
    page.once("dialog", lambda d: d.accept())
    row.get_by_role("button", name="Delete").click()
    row.wait_for(state="detached")

    # a chatflow with an API key: the playground works with the admin token
    chatflow = requests.post(
        f"{url}/api/v1/chatflows",
        headers=headers,
        json={
            "name": "keyed",
            "flowData": {
                "nodes": [
                    {
                        "id": "c",
                        "type": "chatOpenAI",
                        "inputs": {"model": "echo", "baseUrl": mock_llm.base_url},
                    }
                ],
                "edges": [],
            },
            "apiKeyId": listed[0]["id"],
        },
        timeout=5,
    ).json()
    page.goto(f"{url}/#/chat/{chatflow['id']}")
    ask(page, "with the admin token")
    page.wait_for_selector(".stats:has-text('first token')")
    assert answers(page).last.inner_text() == "You said: with the admin token"

    # its "Use via API" snippet carries the key header: with the key filled in, it streams
    page.get_by_role("button", name="Use via API").click()
    code = page.locator("pre.snippet").inner_text()
    assert '"Authorization": "Bearer <your-api-key>"' in code
    script = tmp_path / "keyed.py"
    script.write_text(code.replace("<your-api-key>", key))
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=30)
    assert "You said: Hello world!" in run.stdout, run.stdout + run.stderr
    script.write_text(code)  # without the key: the server says why
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=30)
    assert "You said" not in run.stdout
