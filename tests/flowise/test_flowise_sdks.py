"""Flowise's SDKs, unchanged, against Tailwinds: the PyPI `flowise` package (the `dev`
extra) and the npm `flowise-sdk` run with the machine's node, streaming and not."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningServer
from tests.flowise.conftest import NPM_CI_TIMEOUT_S
from tests.mock_openai import MockOpenAI

NODE_TIMEOUT_S = 60

# the first test may wait for `npm ci` of tests/flowise on a cold cache
pytestmark = pytest.mark.timeout(NPM_CI_TIMEOUT_S + 120)


def test_python_sdk_streams(sqlite_server: RunningServer, mock_llm: MockOpenAI) -> None:
    from flowise import Flowise, IMessage, PredictionData

    flow = sqlite_server.model_chatflow(mock_llm.base_url)
    client = Flowise(base_url=sqlite_server.url)
    history = [
        IMessage(message="earlier", type="userMessage"),
        IMessage(message="an answer", type="apiMessage"),
    ]
    data = PredictionData(
        chatflowId=flow, question="stream this: data: kept", streaming=True, history=history
    )
    events = [json.loads(line) for line in client.create_prediction(data)]
    names = [e["event"] for e in events]
    assert names[0] == "start" and names[-1] == "end"
    text = "".join(e["data"] for e in events if e["event"] == "token")
    assert text == "You said: stream this: data: kept"
    meta = next(e["data"] for e in events if e["event"] == "metadata")
    assert meta["question"] == "stream this: data: kept" and meta["chatMessageId"]
    sent = mock_llm.find("stream this").body["messages"]
    assert sent[:2] == [
        {"role": "user", "content": "earlier"},
        {"role": "assistant", "content": "an answer"},
    ]


def test_python_sdk_answers_without_streaming(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    from flowise import Flowise, PredictionData

    flow = sqlite_server.model_chatflow(mock_llm.base_url)
    client = Flowise(base_url=sqlite_server.url)
    (answer,) = list(client.create_prediction(PredictionData(chatflowId=flow, question="plain")))
    assert answer["text"] == "You said: plain"
    assert answer["chatMessageId"] and answer["chatId"]


def run_node(node: str, modules: Path, script: str, **env: str) -> Any:
    """Run `script` (CommonJS) with `flowise-sdk` resolvable; its last stdout line, parsed."""
    result = subprocess.run(
        [node, "-e", script],
        cwd=modules.parent,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_S,
        env={"PATH": "/usr/bin:/bin", **env},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


JS_SDK = """
const { FlowiseClient } = require('flowise-sdk');
(async () => {
  const client = new FlowiseClient({ baseUrl: process.env.BASE_URL });
  const streaming = process.env.STREAMING === '1';
  const answer = await client.createPrediction({
    chatflowId: process.env.FLOW, question: process.env.QUESTION, streaming,
  });
  if (!streaming) { console.log(JSON.stringify(answer)); return; }
  const events = [];
  for await (const event of answer) events.push(event);
  console.log(JSON.stringify(events));
})().catch((err) => { console.error(err); process.exit(1); });
"""


def test_js_sdk_streams_and_answers(
    sqlite_server: RunningServer, mock_llm: MockOpenAI, node: str, flowise_modules: Path
) -> None:
    flow = sqlite_server.model_chatflow(mock_llm.base_url)
    env = {"BASE_URL": sqlite_server.url, "FLOW": flow}
    events = run_node(node, flowise_modules, JS_SDK, STREAMING="1", QUESTION="from node", **env)
    assert events[0]["event"] == "start"
    assert events[-1] == {"event": "end", "data": "[DONE]"}
    assert "".join(e["data"] for e in events if e["event"] == "token") == "You said: from node"
    answer = run_node(node, flowise_modules, JS_SDK, STREAMING="0", QUESTION="no stream", **env)
    assert answer["text"] == "You said: no stream" and answer["chatMessageId"]
