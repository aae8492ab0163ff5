"""A prediction's `uploads` (Flowise's field): an image reaches the model as an image part
in each provider's own format, a text file's text joins the question, and refusals name
the file."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import requests

from tests.conftest import RunningServer
from tests.mock_openai import MockOpenAI

# a 1x1 PNG
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
        "0000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082"
    )
).decode()
IMAGE = {
    "data": f"data:image/png;base64,{PNG}",
    "type": "file",
    "name": "dot.png",
    "mime": "image/png",
}


def flow(server: RunningServer, node_type: str, base_url: str, model: str, **fields: Any) -> str:
    node = {"id": "m", "type": node_type, "inputs": {"model": model, "baseUrl": base_url}}
    if node_type == "chatAnthropic":
        node["inputs"]["apiKey"] = "sk-ant-test"
    return server.create_chatflow({"nodes": [node]}, **fields)["id"]


def ask(
    server: RunningServer, chatflow_id: str, question: str, uploads: list[Any]
) -> requests.Response:
    return requests.post(
        f"{server.url}/api/v1/prediction/{chatflow_id}",
        json={"question": question, "uploads": uploads},
        timeout=20,
    )


@pytest.mark.parametrize("provider", ["openai", "anthropic", "ollama"])
def test_an_image_reaches_the_model_in_its_format(
    sqlite_server: RunningServer, mock_llm: MockOpenAI, provider: str
) -> None:
    node_type, url, model = {
        "openai": ("chatOpenAI", mock_llm.base_url, "echo"),
        "anthropic": ("chatAnthropic", mock_llm.root_url, "claude-test"),
        "ollama": ("chatOllama", mock_llm.root_url, "llava"),
    }[provider]
    chatflow_id = flow(sqlite_server, node_type, url, model)
    question = f"what is in this picture ({provider})"
    answer = ask(sqlite_server, chatflow_id, question, [IMAGE])
    assert answer.status_code == 200, answer.text
    last = mock_llm.find(question).body["messages"][-1]
    if provider == "openai":
        assert last["content"] == [
            {"type": "text", "text": question},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        ]
    elif provider == "anthropic":
        assert last["content"] == [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            {"type": "text", "text": question},
        ]
    else:
        assert last["content"] == question and last["images"] == [PNG]
    # stored as asked: the history holds the question, not the image
    history = requests.get(
        f"{sqlite_server.url}/api/v1/chatmessage/{chatflow_id}",
        params={"chatId": answer.json()["chatId"]},
        timeout=5,
    ).json()
    assert history[0]["content"] == question


def test_a_text_file_joins_the_question(sqlite_server: RunningServer, mock_llm: MockOpenAI) -> None:
    chatflow_id = flow(sqlite_server, "chatOpenAI", mock_llm.base_url, "echo")
    notes = base64.b64encode(b"the meeting moved to Thursday").decode()
    upload = {
        "data": f"data:text/plain;base64,{notes}",
        "type": "file",
        "name": "notes.txt",
        "mime": "text/plain",
    }
    answer = ask(sqlite_server, chatflow_id, "when is the meeting", [upload])
    assert answer.status_code == 200, answer.text
    sent = mock_llm.find("when is the meeting").body["messages"][-1]["content"]
    assert sent == "when is the meeting\n\n--- notes.txt ---\nthe meeting moved to Thursday"


def test_refusals_name_the_file(sqlite_server: RunningServer, mock_llm: MockOpenAI) -> None:
    limits = {"maxFiles": 1, "maxFileBytes": 10, "allowedTypes": ["image/png"]}
    chatflow_id = flow(
        sqlite_server, "chatOpenAI", mock_llm.base_url, "echo", chatbotConfig={"uploads": limits}
    )
    big = {**IMAGE, "name": "big.png"}
    exe = {
        "data": "data:application/x-msdownload;base64,TVo=",
        "type": "file",
        "name": "a.exe",
        "mime": "application/x-msdownload",
    }
    cases = [
        ([big], "uploads.0", "big.png"),
        ([exe], "uploads.0", "a.exe"),
        (
            [{**IMAGE, "type": "audio"}],
            "uploads.0.type",
            "dot.png",
        ),
        ([{**IMAGE, "data": "not a data url"}], "uploads.0.data", "dot.png"),
        ([IMAGE, IMAGE], "uploads", "at most 1"),
    ]
    for uploads, field, named in cases:
        refused = ask(sqlite_server, chatflow_id, "q", uploads)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"].startswith(f"{field}: ") and named in refused.text
    public = requests.get(
        f"{sqlite_server.url}/api/v1/public-chatbotConfig/{chatflow_id}", timeout=5
    ).json()
    assert public["uploads"]["isImageUploadAllowed"] is True
    assert public["uploads"]["imgUploadSizeAndTypes"][0]["fileTypes"] == ["image/png"]
