"""The playground shows a tool call that waits for approval; Approve (after an edit) lets
the answer go on in the same bubble, Reject tells the model (issue 24)."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import RunningServer
from tests.integration.test_agents import agent_flow
from tests.mock_openai import MockOpenAI

CALC = {"id": "calc", "type": "calculator", "inputs": {"requireApproval": "always"}}


def ask(page: Any, question: str) -> None:
    page.fill('textarea[name="question"]', question)
    page.keyboard.press("Enter")


def test_approve_after_an_edit_continues_in_the_same_bubble(
    page: Any, sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = sqlite_server.create_chatflow(agent_flow(mock_llm, [CALC]))["id"]
    page.goto(f"{sqlite_server.url}/#/chat/{chatflow_id}")
    ask(page, "call:" + json.dumps([["calculator", {"expression": "6*7"}]]))
    card = page.locator('[aria-label="Approval"]')
    card.wait_for()
    assert "calculator" in card.inner_text()
    card.locator('textarea[aria-label="Tool input"]').fill('{"expression": "2+3"}')
    card.get_by_role("button", name="Approve").click()
    page.wait_for_selector(".stats:has-text('first token')")
    bubbles = page.locator('.message[data-role="api"] .bubble')
    assert bubbles.count() == 1 and "Result:" in bubbles.last.inner_text()
    assert "5" in bubbles.last.inner_text()
    assert "approve" in page.locator(".card.action").last.inner_text()


def test_reject_tells_the_model(
    page: Any, sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = sqlite_server.create_chatflow(agent_flow(mock_llm, [CALC]))["id"]
    page.goto(f"{sqlite_server.url}/#/chat/{chatflow_id}")
    ask(page, "call:" + json.dumps([["calculator", {"expression": "6*7"}]]))
    card = page.locator('[aria-label="Approval"]')
    card.wait_for()
    card.locator('input[aria-label="Reason"]').fill("not now")
    card.get_by_role("button", name="Reject").click()
    page.wait_for_selector(".stats:has-text('first token')")
    text = page.locator('.message[data-role="api"] .bubble').last.inner_text()
    assert "declined" in text and "not now" in text
