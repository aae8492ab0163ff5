"""The web app's side of Flowise's widget, in Chromium: the chat widget settings edited
beside the graph, and a rating given in the widget shown in the chat's history."""

from __future__ import annotations

from typing import Any

import requests

from tests.browser.conftest import screenshot
from tests.conftest import RunningServer
from tests.mock_openai import MockOpenAI


def test_widget_settings_and_feedback_in_the_web_app(
    page: Any, sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    url = sqlite_server.url
    flow = sqlite_server.model_chatflow(mock_llm.base_url)
    page.goto(f"{url}/#/edit/{flow}")
    page.wait_for_selector('.react-flow__node[data-id="chat_0"]')
    page.click(".react-flow__pane", position={"x": 5, "y": 5})
    settings = page.locator('[aria-label="Chatflow settings"]')
    settings.locator('input[name="widgetTitle"]').fill("Shop help")
    settings.locator('textarea[name="starterPrompts"]').fill("Opening hours?\n\nWhere are you?\n")
    settings.locator('input[name="chatFeedback"]').check()
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_selector(".banner.ok")
    saved = requests.get(f"{url}/api/v1/chatflows/{flow}", timeout=5).json()["chatbotConfig"]
    assert saved["title"] == "Shop help"
    assert saved["starterPrompts"] == ["Opening hours?", "Where are you?"]
    assert saved["chatFeedback"] is True and saved["followUpPrompts"] is False
    public = requests.get(f"{url}/api/v1/public-chatbotConfig/{flow}", timeout=5).json()
    assert public["starterPrompts"] == {
        "0": {"prompt": "Opening hours?"},
        "1": {"prompt": "Where are you?"},
    }

    # a rating from the widget (its two calls), then the chat's history in the web app
    answer = requests.post(
        f"{url}/api/v1/prediction/{flow}", json={"question": "rate me"}, timeout=10
    ).json()
    rated = requests.post(
        f"{url}/api/v1/feedback/{flow}",
        json={
            "chatflowid": flow,
            "chatId": answer["chatId"],
            "messageId": answer["chatMessageId"],
            "rating": "THUMBS_DOWN",
            "content": "",
        },
        timeout=5,
    ).json()
    requests.put(f"{url}/api/v1/feedback/{rated['id']}", json={"content": "too short"}, timeout=5)
    page.evaluate(
        "([key, chat]) => localStorage.setItem(key, chat)",
        [f"tailwinds-chat-{flow}", answer["chatId"]],
    )
    page.goto(f"{url}/#/chat/{flow}")
    feedback = page.locator('[aria-label="Feedback"]')
    feedback.wait_for()
    assert feedback.inner_text() == "rated down: “too short”"
    screenshot(page, "web-app-feedback")


def test_the_playground_attaches_files(
    page: Any, sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    flow = sqlite_server.model_chatflow(mock_llm.base_url)
    page.goto(f"{sqlite_server.url}/#/chat/{flow}")
    page.set_input_files(
        'input[name="uploads"]',
        files=[{"name": "plan.md", "mimeType": "text/markdown", "buffer": b"# Plan\nship friday"}],
    )
    page.fill('textarea[name="question"]', "what is the plan")
    page.keyboard.press("Enter")
    page.wait_for_selector(".stats:has-text('first token')")
    sent = mock_llm.find("what is the plan").body["messages"][-1]["content"]
    assert sent.startswith("what is the plan\n\n--- plan.md ---\n")
    assert "ship friday" in sent
    assert page.get_by_text("attached: plan.md").count() == 1
