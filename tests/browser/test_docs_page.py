"""`/docs` in a real browser, offline: swagger-ui loads from this server under its strict
Content-Security-Policy (a violated directive would leave the page blank) and lists the
API's routes, and the page asks nothing of any other origin."""

from __future__ import annotations

from typing import Any

from tests.conftest import RunningServer


def test_the_api_docs_render_from_this_server_alone(
    page: Any, sqlite_server: RunningServer
) -> None:
    asked: list[str] = []
    refused: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.goto(f"{sqlite_server.url}/docs")
    page.get_by_text("/api/v1/predictions/{chatflow_id}", exact=True).first.wait_for()
    assert all(url.startswith(sqlite_server.url) or url.startswith("data:") for url in asked), asked
    assert refused == []
